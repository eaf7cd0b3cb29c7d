/**
 * hull's own walls driven through the CLI exactly as a user runs them (bin/hull with the same
 * --root): `run --rm`, `run -d`, `inspect`, `rm -f`. Every instance gets a name with the
 * contrast's run tag, so it can be removed even when its id was never seen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { layout } from '../paths.js';
import { lastLine, runHull } from './spawn.js';
import type { Accel } from './types.js';
import type { VmAccelRequest } from './walls.js';
import { parseInspect, parseTrace, VOLUME_PATH, type Driver, type IdleInstance, type StartupSample } from './driver.js';

export interface HullDriverOptions {
  root: string;
  image: string;
  /** container-userns: the container wall with --userns=auto. */
  wall: 'container' | 'vm' | 'container-userns';
  /** Unique per contrast run: names are `<tag>-<wall>-<n>`. */
  tag: string;
  /** vm: the accelerator asked for with --vm-accel (default auto: none is passed). */
  accel?: VmAccelRequest;
  /** The wall's name in the report (default: `wall`; vm-tcg / vm-kvm side by side). */
  name?: string;
  /** vm: the accelerator its figures are measured with, as far as it is known ('tcg' / 'kvm'). */
  resolvedAccel?: Accel;
}

/** The `hull run` flags that choose a wall (pure): container-userns is the container wall with --userns=auto. */
export function wallFlags(wall: HullDriverOptions['wall'], accel?: VmAccelRequest): string[] {
  if (wall === 'container-userns') return ['--isolation', 'container', '--userns', 'auto'];
  return wall === 'vm' && accel && accel !== 'auto' ? ['--isolation', 'vm', '--vm-accel', accel] : ['--isolation', wall];
}

/** Pure: the letter of a wall's instance names (`<tag>-<letter><n>`), one per wall of a run. */
export function wallLetter(name: string): string {
  return ({ vm: 'v', 'vm-tcg': 't', 'vm-kvm': 'k', 'container-userns': 'u' } as Record<string, string>)[name] ?? 'c';
}

export function hullDriver(o: HullDriverOptions): Driver {
  const names = new Set<string>();
  let seq = 0;
  const wall = wallFlags(o.wall, o.accel);
  const wallName = o.name ?? o.wall;
  // no network, like the podman reference rows (--network none); bench/network.sh measures bridges
  const wallArgs = [...wall, '--network', 'none'];
  const letter = wallLetter(wallName);
  const nextName = () => `${o.tag}-${letter}${++seq}`;
  // Scratch space inside the hull root: removed with the driver, and never confused with another root's.
  fs.mkdirSync(layout(o.root).tmp, { recursive: true });
  const traceDir = fs.mkdtempSync(path.join(layout(o.root).tmp, 'contrast-trace-'));

  const rmNames = async (list: string[]) => {
    for (let i = 0; i < list.length; i += 32) {
      const chunk = list.slice(i, i + 32);
      const r = await runHull(o.root, ['rm', '-f', ...chunk], { timeoutMs: 300_000 });
      // A name that is already gone is fine; keep tracking names whose removal failed otherwise.
      const lines = r.stderr.split('\n');
      for (const n of chunk) {
        const mine = lines.filter((l) => l.includes(n));
        if (r.code === 0 || mine.every((l) => /no such (container|object)|not found/i.test(l))) names.delete(n);
      }
    }
  };

  const d: Driver = {
    name: wallName,
    kind: 'hull',
    accel: o.wall === 'vm' ? o.resolvedAccel : 'native',
    command: `hull run --rm ${wallArgs.filter((a) => a !== '--network' && a !== 'none').join(' ')} ${o.image} true`,
    async prepare() {
      const r = await runHull(o.root, ['image', 'inspect', o.image]);
      if (r.code !== 0) throw new Error(`image ${o.image} is not in ${o.root}: ${lastLine(r.stderr)}`);
    },
    async startupOnce(): Promise<StartupSample> {
      const name = nextName();
      names.add(name);
      const trace = path.join(traceDir, `${name}.jsonl`);
      const r = await runHull(o.root, ['run', '--rm', '--name', name, ...wallArgs, o.image, 'true'], {
        env: { ...process.env, HULL_TRACE: trace },
      });
      let phases: Record<string, number> | undefined;
      try {
        phases = parseTrace(fs.readFileSync(trace, 'utf8'));
        fs.rmSync(trace, { force: true });
      } catch {
        phases = undefined;
      }
      if (r.code === 0) names.delete(name);
      return { ms: r.ms, ok: r.code === 0, error: r.code === 0 ? undefined : lastLine(r.stderr) || `exit ${r.code}`, phases: phases && Object.keys(phases).length ? phases : undefined };
    },
    ...(o.wall === 'vm' ? {
      async bootOnce(mode: 'cold' | 'auto'): Promise<StartupSample> {
        const name = nextName();
        names.add(name);
        const r = await runHull(o.root, ['run', '--rm', '--name', name, ...wallArgs, '--vm-boot', mode, o.image, 'true']);
        if (r.code === 0) names.delete(name);
        return { ms: r.ms, ok: r.code === 0, error: r.code === 0 ? undefined : lastLine(r.stderr) || `exit ${r.code}` };
      },
    } : {}),
    async splitOnce() {
      const name = nextName();
      names.add(name);
      const phases: Record<string, number> = {};
      const step = async (phase: string, args: string[]) => {
        const r = await runHull(o.root, args, { timeoutMs: 180_000 });
        if (r.code !== 0) throw new Error(`${args[0]}: ${lastLine(r.stderr) || `exit ${r.code}`}`);
        phases[phase] = r.ms;
        return r;
      };
      try {
        await step('cli', ['version']);
        await step('create', ['create', '--name', name, ...wallArgs, o.image, 'cat', '/proc/uptime']);
        await step('start', ['start', name]);
        const w = await step('wait', ['wait', name]);
        if (w.stdout.trim() !== '0') throw new Error(`the workload exited with ${w.stdout.trim()}`);
        if (o.wall === 'vm') {
          const logs = await runHull(o.root, ['logs', name]);
          const up = Number(logs.stdout.trim().split(/\s+/)[0]);
          if (logs.code === 0 && Number.isFinite(up) && up > 0) phases['guest-uptime'] = up * 1000;
        }
        await step('rm', ['rm', name]);
        names.delete(name);
        return { ok: true, phases };
      } catch (e) {
        return { ok: false, phases, error: (e as Error).message };
      }
    },
    async startIdle(count, memoryBytes) {
      const want = Array.from({ length: count }, () => nextName());
      for (const n of want) names.add(n);
      const t0 = process.hrtime.bigint();
      const results = await Promise.all(
        want.map((n) => runHull(o.root, ['run', '-d', '--name', n, '--memory', `${memoryBytes}b`, ...wallArgs, o.image, 'sleep', '1000'], { timeoutMs: 300_000 })),
      );
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const failures = results.filter((r) => r.code !== 0).map((r) => lastLine(r.stderr) || `exit ${r.code}`);
      const okNames = want.filter((_, i) => results[i]!.code === 0);
      const instances: IdleInstance[] = [];
      if (okNames.length) {
        const ins = await runHull(o.root, ['inspect', ...okNames]);
        for (const e of parseInspect(ins.stdout)) {
          const name = okNames.find((n) => n === e.name) ?? okNames[instances.length]!;
          instances.push({ name, id: e.id, pid: e.pid });
        }
        if (instances.length < okNames.length) failures.push(`inspect returned ${instances.length} of ${okNames.length}: ${lastLine(ins.stderr)}`);
      }
      return { instances, ms, failures };
    },
    async remove(instances) {
      await rmNames(instances ? instances.map((i) => i.name) : [...names]);
    },
    async probe(script, opts = {}) {
      const name = nextName();
      names.add(name);
      const vols = [...(opts.volume ? [[opts.volume, VOLUME_PATH] as [string, string]] : []), ...(opts.volumes ?? [])].flatMap(([h, c]) => ['-v', `${h}:${c}`]);
      if (opts.anonymousVolume) vols.push('-v', opts.anonymousVolume);
      if (opts.memoryBytes) vols.push('--memory', `${opts.memoryBytes}b`);
      const args = [...wall, '--network', opts.network ?? 'none'];
      const r = await runHull(o.root, ['run', '--rm', '--name', name, ...vols, ...args, o.image, 'sh', '-c', script], { timeoutMs: opts.timeoutMs ?? 180_000 });
      if (r.code === 0) names.delete(name);
      return { ok: r.code === 0, stdout: r.stdout, error: r.code === 0 ? undefined : lastLine(r.stderr) || `exit ${r.code}` };
    },
    async serve(script, opts) {
      const name = nextName();
      names.add(name);
      const extra = [...opts.volumes.flatMap(([h, c]) => ['-v', `${h}:${c}`]), ...opts.publish.flatMap((p) => ['-p', p])];
      const r = await runHull(o.root, ['run', '-d', '--name', name, ...extra, ...wall, '--network', 'bridge', o.image, 'sh', '-c', script], { timeoutMs: 300_000 });
      if (r.code !== 0) return { error: lastLine(r.stderr) || `exit ${r.code}` };
      const ins = await runHull(o.root, ['inspect', name]);
      const e = parseInspect(ins.stdout)[0];
      let ip: string | undefined;
      try {
        ip = (JSON.parse(ins.stdout) as Array<{ NetworkSettings?: { IPAddress?: string } }>)[0]?.NetworkSettings?.IPAddress || undefined;
      } catch {
        ip = undefined;
      }
      if (!e) return { error: `inspect ${name}: ${lastLine(ins.stderr)}` };
      const instance = { name, id: e.id, pid: e.pid };
      return ip ? { instance, ip } : { instance, error: `${name} has no address on the bridge network` };
    },
    async dispose() {
      if (names.size) await rmNames([...names]);
      fs.rmSync(traceDir, { recursive: true, force: true });
      // Anything of this run still listed?
      const ps = await runHull(o.root, ['ps', '-a', '--no-trunc']);
      const left = ps.stdout.split('\n').filter((l) => l.includes(`${o.tag}-${letter}`));
      if (left.length) {
        const again = left.map((l) => l.trim().split(/\s+/).pop()!).filter(Boolean);
        await rmNames(again);
        const ps2 = await runHull(o.root, ['ps', '-a', '--no-trunc']);
        return ps2.stdout.split('\n').filter((l) => l.includes(`${o.tag}-${letter}`)).map((l) => `hull instance still listed: ${l.trim()}`);
      }
      return [];
    },
  };
  return d;
}
