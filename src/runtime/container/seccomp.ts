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
