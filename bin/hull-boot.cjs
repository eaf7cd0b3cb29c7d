'use strict';
// Starts hull from a one-file bundle (made by scripts/bundle.mjs) and keeps V8's compiled code
// for it in a code cache (dist/v8-cache/), so a later call does not parse and compile the same
// functions again. Two entries:
//   hull-boot.cjs ARGS...                     the CLI (dist/cli.cjs), one cache per command word
//   hull-boot.cjs --exit-hook ROOT ID RUN       the exit hook monitors run (dist/exit-hook.cjs)
// The cache is a pure speed-up: V8 rejects a cache that does not fit the source and node, and
// hull then compiles as usual and writes a fresh one. The cache is keyed by the bundle's size,
// mtime and inode too, because V8 itself checks only the source length.
//
// Without a bundle, or with one older than the compiled module it was made from (someone ran
// only `tsc`), the same code runs from dist/src as plain ES modules.
const fs = require('node:fs');
const path = require('node:path');

// bin/hull moved NODE_EXTRA_CA_CERTS aside so that node does not parse those certificates at
// start-up (about 45 ms for a 140-certificate bundle); put it back for hull's TLS code (which
// reads it when it first opens a TLS connection) and for the processes hull starts.
if (process.env.HULL_NODE_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.HULL_NODE_EXTRA_CA_CERTS;
  delete process.env.HULL_NODE_EXTRA_CA_CERTS;
}

const pkg = path.resolve(__dirname, '..');
const hook = process.argv[2] === '--exit-hook';
if (hook) process.argv.splice(2, 1); // the hook reads ROOT ID RUN from process.argv
const argv = process.argv.slice(2);
const entry = hook
  ? { bundle: 'exit-hook.cjs', compiled: ['engine', 'exit-hook.js'], word: 'exit-hook' }
  : { bundle: 'cli.cjs', compiled: ['cli', 'main.js'], word: commandWord() };

// Exit as soon as the command has returned its code and its output is out: everything it
// started has finished by then (it awaits its children), while node would still spend a loop
// turn or two (~2.5 ms) closing handles before it exits. Writes to a file or a terminal are
// synchronous, but a pipe whose reader is slower than hull (`hull logs C | sha256sum`) holds
// what did not fit in node's own buffer: exiting then would cut the output short.
function done(code) {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0);
  if (!pending.length) process.exit(code);
  let left = pending.length;
  for (const s of pending) s.write('', () => --left === 0 && process.exit(code));
}
function crash(e) {
  process.stderr.write(`hull: ${e && e.stack ? e.stack : e}\n`);
  process.exitCode = 125;
}

function bundleStat() {
  try {
    const b = fs.statSync(path.join(pkg, 'dist', entry.bundle));
    const m = fs.statSync(path.join(pkg, 'dist', 'src', ...entry.compiled));
    return b.mtimeMs >= m.mtimeMs ? b : undefined;
  } catch {
    return undefined;
  }
}

/** The command word (`run`, `ps`, `image`...) names the cache: each keeps the functions it used. */
function commandWord() {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--root') i++;
    else if (!a.startsWith('-')) return /^[a-z]{1,20}$/.test(a) ? a : 'other';
  }
  return 'none';
}

/** Run the bundle (its top-level code included) and return its exports. */
function runBundle(st) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const file = path.join(pkg, 'dist', entry.bundle);
  const cacheDir = path.join(pkg, 'dist', 'v8-cache');
  const word = entry.word;
  const cacheName = `${word}-${st.size}-${Math.floor(st.mtimeMs)}-${st.ino}.bin`;
  const cacheFile = path.join(cacheDir, cacheName);
  let cached;
  try {
    cached = fs.readFileSync(cacheFile);
  } catch {
    /* first call of this command */
  }
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), {
    filename: file,
    cachedData: cached,
  });
  if (cached === undefined || script.cachedDataRejected) {
    // Written at exit, so that it holds the functions this command compiled while it ran.
    process.once('exit', () => {
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
        // this command's caches for earlier bundles are of no further use
        for (const n of fs.readdirSync(cacheDir)) if (n.startsWith(`${word}-`) && n !== cacheName && n.endsWith('.bin')) fs.rmSync(path.join(cacheDir, n), { force: true });
      } catch {
        /* a read-only installation runs without a cache */
      }
    });
  }
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  return mod.exports;
}

const st = bundleStat();
if (hook) {
  // The hook runs itself when loaded, and sets process.exitCode.
  if (st) {
    try {
      runBundle(st);
    } catch (e) {
      crash(e);
    }
  } else {
    import('../dist/src/engine/exit-hook.js').catch(crash);
  }
} else if (st) {
  let cli;
  try {
    cli = runBundle(st);
  } catch (e) {
    crash(e);
  }
  if (cli) cli.main(argv).then(done, crash);
} else {
  import('../dist/src/cli/main.js').then((cli) => cli.main(argv)).then(done, crash);
}
