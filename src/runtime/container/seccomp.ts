/**
 * The default seccomp profile: the one Podman ships in /usr/share/containers/seccomp.json
 * (docker's format, with includes/excludes by capability and architecture), converted to the
 * OCI runtime-spec `linux.seccomp` shape for one capability set and architecture.
 */
import fs from 'node:fs';
import { unavailable } from '../../errors.js';

export const DEFAULT_SECCOMP_PATH = '/usr/share/containers/seccomp.json';

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}
interface DockerSyscall {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: Filter;
  excludes?: Filter;
}
export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[] | null;
  syscalls?: DockerSyscall[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: { index: number; value: number; valueTwo: number; op: string }[] }[];
}

/** Go architecture name (as used in the profile's includes) -> libseccomp SCMP_ARCH_*. */
const GOARCH_TO_SCMP: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', '386': 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
};
/** Node's process.arch -> Go's GOARCH. */
export function goArch(nodeArch: string): string {
  return ({ x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** '6.1.0-18-amd64' -> [6, 1]. */
function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function kernelAtLeast(release: string, min: string): boolean {
  const [a, b] = kernelVersion(release);
  const [c, d] = kernelVersion(min);
  return a > c || (a === c && b >= d);
}

/**
 * Convert docker's profile format. A rule applies when all its `includes` hold (the capability is
 * in `caps`, the arch matches, the kernel is new enough) and none of its `excludes` do.
 * @param opts.caps effective capabilities of the container (CAP_*).
 * @param opts.arch Go architecture name (amd64).
 * @param opts.kernel host kernel release (os.release()).
 */
export function convertSeccomp(p: DockerSeccompProfile, opts: { caps: string[]; arch: string; kernel: string }): OciSeccomp {
  const scmp = GOARCH_TO_SCMP[opts.arch];
  let architectures: string[] = [];
  if (p.archMap && scmp) {
    const e = p.archMap.find((a) => a.architecture === scmp);
    if (e) architectures = [e.architecture, ...(e.subArchitectures ?? [])];
  } else if (p.architectures) architectures = p.architectures;
  const arches = new Set([opts.arch, ...(opts.arch === 'amd64' ? ['x32', 'x86', '386'] : []), ...(opts.arch === 'arm64' ? ['arm'] : [])]);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const s of p.syscalls ?? []) {
    const inc = s.includes ?? {};
    const exc = s.excludes ?? {};
    if (inc.caps?.length && !inc.caps.every((c) => opts.caps.includes(c))) continue;
    if (inc.arches?.length && !inc.arches.some((a) => arches.has(a))) continue;
    if (inc.minKernel && !kernelAtLeast(opts.kernel, inc.minKernel)) continue;
    if (exc.caps?.length && exc.caps.some((c) => opts.caps.includes(c))) continue;
    if (exc.arches?.length && exc.arches.some((a) => arches.has(a))) continue;
    if (exc.minKernel && kernelAtLeast(opts.kernel, exc.minKernel)) continue;
    const names = s.names ?? (s.name ? [s.name] : []);
    if (names.length === 0) continue;
    const rule: OciSeccomp['syscalls'][number] = { names, action: s.action };
    if (s.errnoRet !== undefined) rule.errnoRet = s.errnoRet;
    if (s.args && s.args.length) rule.args = s.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
    syscalls.push(rule);
  }
  const out: OciSeccomp = { defaultAction: p.defaultAction, architectures, syscalls };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  return out;
}

/** linux/sched.h: the clone/unshare flag that creates a user namespace. */
export const CLONE_NEWUSER = 0x10000000;
const EPERM = 1;
const ENOSYS = 38;

/**
 * hull's addition to the default profile: no new user namespace inside the container (podman's
 * profile allows one; inside it a process holds every capability over its own namespaces, the
 * way most recent kernel exploits start). docker's profile does the same for clone/clone3, and
 * allows it back with CAP_SYS_ADMIN, as hull does (the caller does not apply it then).
 * - clone: allowed unless its flags (argument 0; 1 on s390x) hold CLONE_NEWUSER, refused with EPERM;
 * - unshare: the same on its flags (argument 0);
 * - clone3: its flags live in a struct seccomp cannot read, so it fails with ENOSYS and libc
 *   falls back to clone (docker's profile does the same).
 * Every other rule is kept; clone, clone3 and unshare are taken out of unconditional allow rules.
 * Pure: returns a new profile.
 */
export function refuseUserNamespaces(p: OciSeccomp, arch: string): OciSeccomp {
  const guarded = new Set(['clone', 'clone3', 'unshare']);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const r of p.syscalls) {
    if (r.action !== 'SCMP_ACT_ALLOW' || !r.names.some((n) => guarded.has(n))) {
      syscalls.push(r);
      continue;
    }
    const names = r.names.filter((n) => !guarded.has(n));
    if (names.length) syscalls.push({ ...r, names });
  }
  const masked = (index: number, datum: number) => [{ index, value: CLONE_NEWUSER, valueTwo: datum, op: 'SCMP_CMP_MASKED_EQ' }];
  const cloneArg = arch === 's390x' ? 1 : 0;
  syscalls.push(
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: masked(cloneArg, 0) },
    { names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: masked(cloneArg, CLONE_NEWUSER) },
    { names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: masked(0, 0) },
    { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: masked(0, CLONE_NEWUSER) },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  );
  return { ...p, syscalls };
}

const ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'];
const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];

/**
 * Check a profile in docker's JSON format (`--security-opt seccomp=FILE`) and return it typed.
 * Throws a plain Error saying what is wrong (the caller names the file).
 */
export function parseDockerProfile(text: string): DockerSeccompProfile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
  const p = v as Record<string, unknown>;
  if (typeof p.defaultAction !== 'string' || !ACTIONS.includes(p.defaultAction)) throw new Error(`defaultAction ${JSON.stringify(p.defaultAction)} is not one of ${ACTIONS.join(', ')}`);
  if (p.syscalls !== undefined && p.syscalls !== null && !Array.isArray(p.syscalls)) throw new Error('syscalls is not a list');
  ((p.syscalls as unknown[] | undefined) ?? []).forEach((x, i) => {
    const s = x as Record<string, unknown>;
    const where = `syscalls[${i}]`;
    if (!s || typeof s !== 'object') throw new Error(`${where} is not an object`);
    const names = s.names ?? (s.name !== undefined ? [s.name] : undefined);
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && /^[a-z0-9_]+$/.test(n))) throw new Error(`${where}: names must be a non-empty list of syscall names`);
    if (typeof s.action !== 'string' || !ACTIONS.includes(s.action)) throw new Error(`${where}: action ${JSON.stringify(s.action)} is not one of ${ACTIONS.join(', ')}`);
    if (s.errnoRet !== undefined && (!Number.isInteger(s.errnoRet) || (s.errnoRet as number) < 0)) throw new Error(`${where}: errnoRet must be a non-negative integer`);
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) throw new Error(`${where}: args is not a list`);
      for (const a of s.args as Record<string, unknown>[]) {
        if (!Number.isInteger(a?.index) || (a.index as number) < 0 || (a.index as number) > 5) throw new Error(`${where}: an argument index must be 0..5`);
        if (!Number.isInteger(a.value) || (a.valueTwo !== undefined && !Number.isInteger(a.valueTwo))) throw new Error(`${where}: argument values must be integers`);
        if (typeof a.op !== 'string' || !OPS.includes(a.op)) throw new Error(`${where}: op ${JSON.stringify(a.op)} is not one of ${OPS.join(', ')}`);
      }
    }
  });
  if (p.archMap !== undefined && p.archMap !== null && !Array.isArray(p.archMap)) throw new Error('archMap is not a list');
  if (p.architectures !== undefined && p.architectures !== null && !(Array.isArray(p.architectures) && p.architectures.every((a) => typeof a === 'string'))) throw new Error('architectures is not a list of names');
  return p as unknown as DockerSeccompProfile;
}

let cached: { path: string; profile: DockerSeccompProfile } | undefined;

/** Read and parse the default profile (cached per process). */
export function loadDefaultSeccomp(file = DEFAULT_SECCOMP_PATH): DockerSeccompProfile {
  if (cached?.path === file) return cached.profile;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw unavailable(`the default seccomp profile ${file} is missing`, {
      cause: e,
      hint: 'apt-get install golang-github-containers-common, or run with --security-opt seccomp=unconfined',
    });
  }
  const profile = JSON.parse(text) as DockerSeccompProfile;
  cached = { path: file, profile };
  return profile;
}
