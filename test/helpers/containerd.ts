/**
 * A real containerd (Debian's 1.6) for one test file: its own config, root, state, sockets, CNI
 * conf dir (a bridge network whose bridge, subnet and IPAM directory are unique to this
 * instance) and netns directory, and a PATH that finds this checkout's containerd-shim-hull-v2
 * first. The CRI plugin knows the runtime handlers `runc` (the baseline) and `hull-vm`.
 * Nothing global is used: the instance, its shims, VMs, mounts, netns and bridge are torn down
 * by stop().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_ROOTFS, HULL_BIN, REPO, importBusybox, makeTempRoot, type RunResult } from './hull.js';

export const SANDBOX_IMAGE = 'docker.io/library/pause:hull';
export const BUSYBOX_IMAGE = 'docker.io/library/busybox:latest';

/** Why containerd tests cannot run here ('' when they can). */
export function containerdMissing(): string {
  for (const [bin, pkg] of [['containerd', 'containerd'], ['ctr', 'containerd'], ['containerd-shim-runc-v2', 'containerd'], ['runc', 'runc']] as const) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} missing (apt-get install ${pkg})`;
  }
  if (!fs.existsSync('/usr/lib/cni/bridge')) return 'CNI plugins missing (apt-get install containernetworking-plugins)';
  if (!fs.existsSync(path.join(REPO, 'dist', 'src', 'shim', 'main.js'))) return 'the shim is not built (npm run build)';
  return '';
}

export interface Containerd {
  dir: string;
  address: string;
  ttrpcAddress: string;
  /** CRI's namespace. */
  ns: string;
  /** The CNI bridge's name and the pod subnet. */
  bridge: string;
  subnet: string;
  /** Where the CRI plugin bind-mounts pod netns (netns_mounts_under_state_dir). */
  netnsDir: string;
  /** Pod directories of this instance's hull shims live under here (HULL_SHIM_STATE). */
  shimState: string;
  ctr(args: string[], opts?: { ns?: string; input?: string; timeoutMs?: number }): RunResult;
  log(): string;
  stop(): Promise<void>;
}

function waitSocket(p: string, child: ChildProcess, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      if (child.exitCode !== null) return reject(new Error(`containerd exited with ${child.exitCode}`));
      const s = net.connect(p);
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        if (Date.now() > end) return reject(new Error(`containerd did not listen on ${p} within ${ms} ms`));
        setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

export async function startContainerd(prefix = 'hull-ctrd-'): Promise<Containerd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const hex = crypto.randomBytes(4).toString('hex');
  const bridge = `hb${hex}`;
  const subnet = `10.${100 + (crypto.randomBytes(1)[0]! % 100)}.${crypto.randomBytes(1)[0]!}.0/24`;
  const address = path.join(dir, 'c.sock');
  const ttrpcAddress = `${address}.ttrpc`;
  const shimState = path.join(dir, 'shims');
  fs.mkdirSync(path.join(dir, 'cni'), { recursive: true });
  fs.mkdirSync(shimState);
  fs.writeFileSync(path.join(dir, 'cni', '10-hull-test.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: `hull-test-${hex}`,
    plugins: [{
      type: 'bridge', bridge, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(dir, 'cni-ipam') },
    }],
  }));
  fs.writeFileSync(path.join(dir, 'config.toml'), `version = 2
root = "${dir}/root"
state = "${dir}/state"
oom_score = 0
[grpc]
  address = "${address}"
[ttrpc]
  address = "${ttrpcAddress}"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull-vm]
      runtime_type = "io.containerd.hull.v2"
`);
  const logFd = fs.openSync(path.join(dir, 'containerd.log'), 'w');
  const child = spawn('containerd', ['--config', path.join(dir, 'config.toml')], {
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, PATH: `${path.join(REPO, 'bin')}:${process.env.PATH}`, HULL_SHIM_STATE: shimState },
  });
  fs.closeSync(logFd);
  child.on('error', () => undefined);
  try {
    await waitSocket(address, child, 30_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-3000)}`);
  }
  const ctr = (args: string[], opts: { ns?: string; input?: string; timeoutMs?: number } = {}): RunResult => {
    const r = spawnSync('ctr', ['--address', address, '-n', opts.ns ?? 'test', ...args], { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
    return { code: r.status ?? 128 + (r.signal ? os.constants.signals[r.signal] : 1), stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const c: Containerd = {
    dir, address, ttrpcAddress, ns: 'k8s.io', bridge, subnet, netnsDir: path.join(dir, 'state', 'io.containerd.grpc.v1.cri', 'netns'), shimState,
    ctr,
    log: () => fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8'),
    async stop() {
      for (const ns of ['test', 'k8s.io']) {
        for (const id of ctr(['task', 'ls', '-q'], { ns }).stdout.split('\n').filter(Boolean)) {
          ctr(['task', 'kill', '-s', 'SIGKILL', id], { ns });
          ctr(['task', 'delete', '-f', id], { ns });
        }
        for (const id of ctr(['containers', 'ls', '-q'], { ns }).stdout.split('\n').filter(Boolean)) ctr(['containers', 'rm', id], { ns });
      }
      child.kill('SIGTERM');
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      for (const m of mountsBelow(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return c;
}

/** Mount points under dir (deepest first). */
export function mountsBelow(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/**
 * OCI archives of busybox and of a pause image (busybox with `sleep` as its command; the CRI
 * plugin's sandbox image must be local here), made with hull from set-up's busybox rootfs.
 */
export function makeImages(dir: string): { busybox: string; pause: string } {
  const tr = makeTempRoot('hull-ctrd-img-');
  try {
    importBusybox(tr.root);
    const env = { ...process.env, SOURCE_DATE_EPOCH: '0' };
    const imp = spawnSync(HULL_BIN, ['--root', tr.root, 'import', '--change', 'CMD ["/bin/sleep", "2147483647"]', BUSYBOX_ROOTFS, 'pause:hull'], { encoding: 'utf8', env });
    if (imp.status !== 0) throw new Error(`hull import: ${imp.stderr}`);
    const out = { busybox: path.join(dir, 'busybox.tar'), pause: path.join(dir, 'pause.tar') };
    for (const [img, file] of [['busybox:latest', out.busybox], ['pause:hull', out.pause]] as const) {
      const s = spawnSync(HULL_BIN, ['--root', tr.root, 'save', '-o', file, img], { encoding: 'utf8' });
      if (s.status !== 0) throw new Error(`hull save ${img}: ${s.stderr}`);
    }
    return out;
  } finally {
    tr.cleanup();
  }
}

/** Imports both images into a namespace of the instance. */
export function importImages(c: Containerd, ns: string): void {
  const imgs = makeImages(c.dir);
  for (const f of [imgs.busybox, imgs.pause]) {
    const r = c.ctr(['images', 'import', f], { ns });
    if (r.code !== 0) throw new Error(`ctr images import ${f}: ${r.stderr}`);
  }
}
