/**
 * hull as a library, used the way an outside Node program would: `import('hull')` (the package
 * resolves itself by name through package.json "exports"), streams passed in, no CLI involved.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';

type Hull = typeof import('../../src/index.js');

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.setEncoding('utf8').on('data', (d: string) => (buf += d));
  return { stream, text: () => buf };
}

describe('library', { timeout: 300_000 }, () => {
  let tr: TempRoot;
  let lib: Hull;
  before(async () => {
    tr = makeTempRoot('hull-lib-');
    importBusybox(tr.root);
    const name = 'hull';
    lib = (await import(name)) as Hull;
  });
  after(() => tr.cleanup());

  test('run, ps, logs, exec, inspect, stop, rm through Engine', async () => {
    const engine = lib.Engine.open(tr.root);
    try {
      const out = collect();
      const err = collect();
      const r = await engine.run({ image: 'busybox', cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 6'], rm: true }, { stdout: out.stream, stderr: err.stream });
      assert.equal(r.exitCode, 6);
      assert.equal(out.text(), 'to-out\n');
      assert.equal(err.text(), 'to-err\n');

      const d = await engine.run(
        { image: 'busybox', name: 'lib-web', cmd: ['sh', '-c', 'echo ready; exec sleep 300'], memoryBytes: lib.parseBytes('64m', 'memory') },
        { stdout: out.stream, stderr: err.stream, detach: true },
      );
      assert.match(d.id, /^[0-9a-f]{64}$/);
      const ps = await engine.ps();
      assert.deepEqual(ps.map((c) => c.Names[0]), ['/lib-web']);
      assert.equal(ps[0]!.State, 'running');

      const ex = collect();
      const code = await engine.exec('lib-web', { cmd: ['sh', '-c', 'echo $((1+2))'] }, { stdout: ex.stream, stderr: ex.stream });
      assert.equal(code, 0);
      assert.equal(ex.text(), '3\n');
      const bad = await engine.exec('lib-web', { cmd: ['nope'] }, { stdout: ex.stream, stderr: ex.stream }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(bad instanceof lib.HullError);

      for (let i = 0; i < 50; i++) {
        const l = collect();
        await engine.logs('lib-web', {}, { stdout: l.stream, stderr: l.stream });
        if (l.text() === 'ready\n') break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const logs = collect();
      await engine.logs('lib-web', { tail: 5 }, { stdout: logs.stream, stderr: logs.stream });
      assert.equal(logs.text(), 'ready\n');

      const insp = await engine.inspect('lib-web');
      assert.equal(insp.State.Running, true);
      assert.equal(insp.HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(insp.HostConfig.Isolation, 'container');

      await engine.stop('lib-web', 1);
      assert.equal((await engine.inspect('lib-web')).State.ExitCode, 137, 'sleep ignores SIGTERM as pid 1: killed after 1 s');
      await engine.rm('lib-web');
      assert.deepEqual(await engine.ps({ all: true }), []);

      const missing = await engine.inspect('lib-web').then(() => undefined, (e: unknown) => e);
      assert.ok(missing instanceof lib.HullError && missing.code === 'NOT_FOUND');
    } finally {
      engine.close();
    }
  });
});
