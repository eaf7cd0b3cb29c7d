#!/usr/bin/env node
// Runs the compiled tests with node's test runner: unit tests first, then integration tests
// (real containers, VMs and registries, each under its own temporary hull root), then the short
// form of the stress suite (HULL_STRESS=full for the full one: npm run stress).
// Usage: node scripts/run-tests.mjs [unit|integration|stress] [name-filter]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const which = process.argv[2] ?? 'all';
const filter = process.argv[3];
const dirs = which === 'all' ? ['unit', 'integration', 'stress'] : [which];
const files = [];
for (const d of dirs) {
  const base = path.join('dist', 'test', d);
  if (!fs.existsSync(base)) continue;
  for (const f of fs.readdirSync(base, { recursive: true }).map(String).sort()) {
    if (f.endsWith('.test.js') && (!filter || f.includes(filter))) files.push(path.join(base, f));
  }
}
if (files.length === 0) {
  console.error('no test files found: run the build first (npm run setup)');
  process.exit(1);
}
// The tests drive bin/hull, which runs the CLI bundle: rebuild it when only tsc has run since.
const bundle = path.join('dist', 'cli.cjs');
const compiled = path.join('dist', 'src', 'cli', 'main.js');
if (fs.existsSync(compiled) && (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < fs.statSync(compiled).mtimeMs)) {
  const b = spawnSync(process.execPath, [path.join('scripts', 'bundle.mjs')], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// One file at a time: integration tests start VMs and many containers on a 2-core machine.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
