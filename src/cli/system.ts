import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CommandDef } from './command.js';
import { versionString } from '../version.js';

/** What `hull info` reports (JSON with --format json). */
async function gatherInfo(root: string): Promise<Record<string, unknown>> {
  const { containerHostInfo } = await import('../runtime/container/index.js');
  const h = containerHostInfo();
  let containers = { total: 0, running: 0 };
  let images = 0;
  if (fs.existsSync(path.join(root, 'hull.db'))) {
    const { openDb } = await import('../state/db.js');
    const db = openDb(path.join(root, 'hull.db'));
    const c = db.prepare("SELECT COUNT(*) AS total, SUM(status = 'running') AS running FROM containers").get() as { total: number; running: number | null };
    containers = { total: c.total, running: c.running ?? 0 };
    images = (db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n;
  }
  const cg = h.cgroup;
  const cgroup =
    cg.kind === 'v2'
      ? { version: 2, layout: 'unified', mount: cg.mount }
      : cg.kind === 'hybrid'
        ? { version: 1, layout: 'hybrid', unified: cg.unified, unifiedControllers: cg.unifiedControllers, controllers: Object.keys(cg.controllers),
            note: 'crun refuses hybrid mode: hull runs it in a private mount namespace with the cgroup2 mount unmounted' }
        : { version: 1, layout: 'legacy', controllers: Object.keys(cg.controllers) };
  const info: Record<string, unknown> = {
    ServerVersion: versionString(),
    HullRoot: root,
    Containers: containers.total,
    ContainersRunning: containers.running,
    Images: images,
    Isolations: ['container', 'vm'],
    DefaultRuntime: 'crun',
    Runtimes: h.runtimes,
    Monitor: { conmon: h.conmon },
    InitBinary: h.init,
    Cgroup: cgroup,
    Kernel: os.release(),
    OperatingSystem: readOsName(),
    Architecture: os.arch(),
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
  };
  info.Security = await securityInfo();
  info.VM = await vmInfo(root);
  return info;
}

/** The container wall's defaults, and how they compare with docker's and podman's. */
async function securityInfo(): Promise<Record<string, unknown>> {
  const { DEFAULT_CAPS, DOCKER_DEFAULT_CAPS } = await import('../runtime/container/caps.js');
  const { DEFAULT_SECCOMP_PATH } = await import('../runtime/container/seccomp.js');
  const short = (c: string) => c.replace(/^CAP_/, '');
  return {
    DefaultCapabilities: DEFAULT_CAPS.map(short),
    Capabilities: `podman 4's ${DEFAULT_CAPS.length}; docker's ${DOCKER_DEFAULT_CAPS.length} also has ${DOCKER_DEFAULT_CAPS.filter((c) => !DEFAULT_CAPS.includes(c)).map(short).join(', ')} (--cap-add gives each back)`,
    Seccomp: `${DEFAULT_SECCOMP_PATH} (podman's profile) + no new user namespace (clone/unshare CLONE_NEWUSER: EPERM, clone3: ENOSYS) unless --cap-add SYS_ADMIN, as docker's profile; podman's allows one`,
    SeccompOff: '--security-opt seccomp=unconfined',
    MaskedPaths: 'docker\'s /proc and /sys list, masked; /proc/sys, /proc/bus, /proc/fs, /proc/irq, /proc/sysrq-trigger read-only; /sys read-only',
    UserNamespace: process.env.HULL_USERNS_DEFAULT === 'auto'
      ? 'auto (HULL_USERNS_DEFAULT): each container its own range of host ids; --userns=host for the host\'s'
      : 'host (container root is uid 0 on the host); --userns=auto gives a container its own range of host ids',
    NoNewPrivileges: 'off unless --security-opt no-new-privileges',
  };
}

/** The VM wall's host facts: QEMU, guest assets, and the accelerator the host facts decide. */
async function vmInfo(root?: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  try {
    const accel = await import('../runtime/vm/accel.js');
    const facts = accel.hostFacts();
    const choice = accel.knownAccel();
    out.DevKvm = facts.devKvm;
    out.KvmModules = facts.modules;
    out.Accelerator = choice ? `${choice.accel}: ${choice.reason}` : 'decided by a probe boot at the first VM start (/dev/kvm present without kvm_intel/kvm_amd)';
  } catch (e) {
    out.Accelerator = `unknown (${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    const assets = await import('../runtime/vm/assets.js');
    try {
      out.Qemu = assets.qemuBinary();
    } catch (e) {
      out.Qemu = `missing (${e instanceof Error ? e.message : String(e)})`;
    }
    try {
      const g = assets.guestAssets();
      out.GuestKernel = g.release ? `${g.kernel} (${g.release})` : g.kernel;
    } catch (e) {
      out.GuestKernel = `missing (${e instanceof Error ? e.message : String(e)})`;
    }
  } catch {
    /* the VM wall is not in this build */
  }
  if (root) Object.assign(out, await vmTemplateInfo(root));
  return out;
}

/** The VM templates of this root (runtime/vm/snapshot.ts): how runs start, and each template's shape and disk use. */
async function vmTemplateInfo(root: string): Promise<Record<string, unknown>> {
  try {
    const snap = await import('../runtime/vm/snapshot.js');
    const list = snap.listTemplates(root);
    const mib = (b: number) => `${(b / (1024 * 1024)).toFixed(1)} MiB`;
    return {
      Boot: `${snap.DEFAULT_VM_BOOT} by default (--vm-boot auto restores a template of the run's shape, cold boots its kernel)`,
      Templates: Object.fromEntries(list.map((t) => [t.key, `${t.memMiB} MiB, ${t.cpus} vCPU, ${t.nics} NIC, ${t.accel}, ${mib(t.bytes)} on disk, created ${t.created}${t.valid ? '' : ' (fails its check: rebuilt at next use)'}`])),
      TemplatesSize: mib(list.reduce((a, t) => a + t.bytes, 0)),
      VmPool: await poolInfo(root),
    };
  } catch {
    return {};
  }
}

/** The warm pool of this root (runtime/vm/pool.ts): what was asked for and what is ready. */
async function poolInfo(root: string): Promise<string> {
  const pool = await import('../runtime/vm/pool.js');
  const c = pool.readPoolConfig(root);
  const keeper = pool.keeperAlive(root);
  if (!keeper && c.size === 0) return "off ('hull vm pool --size N' keeps N microVMs restored and paused for 'hull run --rm --vm')";
  return `${pool.readyEntries(root).length} of ${c.size} ready (${c.memMiB} MiB, ${c.cpus} vCPU)${keeper ? '' : ', no keeper running'}`;
}

function readOsName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

export const commands: CommandDef[] = [
  {
    name: 'info',
    usage: 'info [OPTIONS]',
    summary: 'Display system-wide information: runtimes, cgroup layout, hull root, VM acceleration',
    flags: [{ name: 'format', short: 'f', type: 'string', help: "'json' for JSON output" }],
    maxArgs: 0,
    async run(ctx, p) {
      const info = await gatherInfo(ctx.root);
      if (p.flags.get('format') === 'json') {
        ctx.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return 0;
      }
      const lines: string[] = [];
      const walk = (o: Record<string, unknown>, indent: string) => {
        for (const [k, v] of Object.entries(o)) {
          if (v && typeof v === 'object' && !Array.isArray(v)) {
            lines.push(`${indent}${k}:`);
            walk(v as Record<string, unknown>, `${indent}  `);
          } else lines.push(`${indent}${k}: ${Array.isArray(v) ? v.join(', ') : v === null ? '(not found)' : String(v)}`);
        }
      };
      walk(info, ' ');
      ctx.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    },
  },
  { name: 'system info', usage: 'system info', summary: 'Alias of info', flags: [{ name: 'format', short: 'f', type: 'string', help: "'json'" }], maxArgs: 0,
    run: (ctx, p) => commands[0]!.run(ctx, p) },
  {
    name: 'system check',
    usage: 'system check [--fix] [--format json]',
    summary: 'Reconcile every container, then list (and with --fix remove) what no container owns: runtime state, cgroups, monitors, mounts, directories',
    flags: [
      { name: 'fix', type: 'bool', help: 'Remove what was found' },
      { name: 'format', short: 'f', type: 'string', help: "'json' for JSON output" },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const { Engine } = await import('../engine/engine.js');
      const engine = Engine.open(ctx.root);
      const fix = p.flags.get('fix') === true;
      const found = await engine.systemCheck({ fix });
      if (p.flags.get('format') === 'json') ctx.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
      else if (found.length === 0) ctx.stdout.write('nothing to fix: every container, runtime state, cgroup, monitor, mount and directory is owned\n');
      else {
        const rows = found.map((f) => [f.kind, f.what, f.fixed === undefined ? 'found' : f.fixed ? 'removed' : `not removed: ${f.error ?? ''}`]);
        const w = [0, 1].map((i) => Math.max(i === 0 ? 4 : 4, ...rows.map((r) => r[i]!.length)));
        ctx.stdout.write(`${'KIND'.padEnd(w[0]! + 3)}${'WHAT'.padEnd(w[1]! + 3)}STATE\n`);
        for (const r of rows) ctx.stdout.write(`${r[0]!.padEnd(w[0]! + 3)}${r[1]!.padEnd(w[1]! + 3)}${r[2]}\n`);
      }
      // 0: nothing left that nothing owns; 1: something found and not (or not all) removed
      return found.some((f) => f.fixed !== true) ? 1 : 0;
    },
  },
  {
    name: 'version',
    usage: 'version',
    summary: 'Show the hull version',
    flags: [],
    maxArgs: 0,
    async run(ctx) {
      ctx.stdout.write(`${versionString()}\nOS/Arch: ${os.platform()}/${os.arch()}\nKernel: ${os.release()}\n`);
      return 0;
    },
  },
];
