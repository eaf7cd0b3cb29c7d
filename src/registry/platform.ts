import { invalid, notFound } from '../errors.js';
import type { Descriptor, Platform } from '../oci/types.js';
import { MANIFEST_TYPES } from '../oci/media.js';

/** A platform as written on the command line: os/arch[/variant]. Pure: no I/O. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/** Parse `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`, `amd64` (os defaults to linux). */
export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => p === '' || !/^[a-z0-9._-]+$/.test(p)) || parts.length > 3) {
    throw invalid(`invalid platform ${JSON.stringify(s)}: expected os/arch[/variant], e.g. linux/amd64`);
  }
  let os: string;
  let arch: string;
  let variant: string | undefined;
  if (parts.length === 1) {
    os = 'linux';
    arch = parts[0]!;
  } else {
    [os, arch, variant] = parts as [string, string, string | undefined];
  }
  return normalisePlatform({ os, architecture: ARCH_ALIASES[arch] ?? arch, variant });
}

/** containerd's normalisation: arm64 has variant v8 by default, arm has v7; amd64 v1 is plain amd64. */
export function normalisePlatform(p: PlatformSpec): PlatformSpec {
  let variant = p.variant || undefined;
  if (p.architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (p.architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os: p.os, architecture: p.architecture, ...(variant ? { variant } : {}) };
}

/** The platform of the machine hull runs on (what docker pulls by default). */
export function hostPlatform(arch: string = process.arch): PlatformSpec {
  const map: Record<string, PlatformSpec> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[arch] ?? { os: 'linux', architecture: arch };
}

export function formatPlatform(p: PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Whether an index entry is an attestation or other non-runnable artifact: buildkit marks
 * provenance/SBOM manifests with platform unknown/unknown and a vnd.docker.reference.type
 * annotation.
 */
export function isAttestation(d: Descriptor): boolean {
  if (d.annotations && 'vnd.docker.reference.type' in d.annotations) return true;
  if (d.platform && d.platform.os === 'unknown' && d.platform.architecture === 'unknown') return true;
  return false;
}

/** Whether an index entry's platform matches the wanted one (a missing variant matches any). */
export function platformMatches(have: Platform | undefined, want: PlatformSpec): boolean {
  if (!have) return false;
  const h = normalisePlatform({ os: have.os, architecture: have.architecture, variant: have.variant });
  if (h.os !== want.os || h.architecture !== want.architecture) return false;
  return want.variant === undefined || h.variant === undefined || h.variant === want.variant;
}

/**
 * Choose the manifest for `want` from an index's entries, skipping attestations and entries
 * that are not image manifests. An exact variant match beats an entry without a variant.
 */
export function choosePlatform(manifests: Descriptor[], want: PlatformSpec): Descriptor {
  const candidates = manifests.filter((d) => MANIFEST_TYPES.includes(d.mediaType) && !isAttestation(d) && platformMatches(d.platform, want));
  const exact = candidates.find((d) => normalisePlatform({ os: d.platform!.os, architecture: d.platform!.architecture, variant: d.platform!.variant }).variant === want.variant);
  const chosen = exact ?? candidates[0];
  if (!chosen) {
    const offered = manifests
      .filter((d) => d.platform && !isAttestation(d))
      .map((d) => formatPlatform(normalisePlatform({ os: d.platform!.os, architecture: d.platform!.architecture, variant: d.platform!.variant })));
    throw notFound(
      `no matching manifest for ${formatPlatform(want)} in the manifest list entries${offered.length ? ` (offered: ${offered.join(', ')})` : ''}`,
    );
  }
  return chosen;
}
