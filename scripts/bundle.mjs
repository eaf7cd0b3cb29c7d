// Bundles hull's two process entries into one CommonJS file each, which bin/hull-boot.cjs runs:
//   dist/cli.cjs        dist/src/cli/main.js and everything it imports (command modules too)
//   dist/exit-hook.cjs  dist/src/engine/exit-hook.js, which conmon and the VM monitor run when
//                       an instance ends
//   dist/shim.cjs       dist/src/shim/main.js, containerd-shim-hull-v2 (bin/containerd-shim-hull-v2)
//
// Why: Node's ESM loader resolves, reads and links each of hull's ~100 modules one by one, and
// that took about 20 ms of every `hull` call here; one CommonJS file also lets bin/hull-boot.cjs
// keep V8's compiled code between calls (a code cache), which ESM cannot do on Node 20.
// The library (`import ... from 'hull'`), the tests and worker threads keep using dist/src.
//
// Run after `tsc` (npm run build does both). Packages with native addons or their own files
// stay outside the bundle and are required from node_modules at run time.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));

// esbuild's __toESM copies every property of a CommonJS module (node:fs, node:crypto ...) onto a
// new object as a getter: ~2 ms of each CLI start for ~20 builtins. A namespace that inherits
// from the module reads the same values. Only this exact helper is replaced; if an esbuild
// version words it otherwise, the bundle keeps esbuild's own (correct, slower).
const TO_ESM = /^var __toESM = \(mod, isNodeMode, target\) => \(target = mod != null \? __create\(__getProtoOf\(mod\)\) : \{\}, __copyProps\([\s\S]*?^\)\);$/m;
const LEAN_TO_ESM = 'var __toESM = (mod, isNodeMode) => mod == null ? { default: mod } : isNodeMode || !mod.__esModule ? Object.create(mod, { default: { value: mod, enumerable: true } }) : mod;';

async function bundle(entryRel, outName) {
  const entry = path.join(repo, 'dist', 'src', ...entryRel);
  const out = path.join(repo, 'dist', outName);
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing; run tsc first (npm run build)`);
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await build({
      entryPoints: [entry],
      outfile: tmp,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      // Runtime dependencies stay in node_modules (native addons, their own lazy requires),
      // except better-sqlite3's JavaScript, which every command loads (its addon is still
      // loaded by path).
      external: Object.keys(pkg.dependencies ?? {}).filter((d) => d !== 'better-sqlite3'),
      // CommonJS has no import.meta: give the modules that use import.meta.url (createRequire,
      // packageRoot) the bundle's own URL, which lies in the same installation.
      define: { 'import.meta.url': '__hull_bundle_url' },
      banner: { js: "const __hull_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
      // import() of a module left outside (node:zlib, tar-stream ...) becomes a require():
      // code run through vm.Script with a code cache cannot import() on Node 20.
      supported: { 'dynamic-import': false },
      logLevel: 'warning',
    });
    let text = fs.readFileSync(tmp, 'utf8');
    if (TO_ESM.test(text)) text = text.replace(TO_ESM, LEAN_TO_ESM);
    else console.error(`bundle: esbuild's __toESM has another shape in ${outName}; kept as it is`);
    const left = text.match(/[^\w$.]import\(/g);
    if (left) throw new Error(`${left.length} dynamic import() left in ${outName}; bin/hull-boot.cjs cannot run it`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

try {
  await bundle(['cli', 'main.js'], 'cli.cjs');
  await bundle(['engine', 'exit-hook.js'], 'exit-hook.cjs');
  await bundle(['shim', 'main.js'], 'shim.cjs');
} catch (e) {
  console.error(`bundle: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
