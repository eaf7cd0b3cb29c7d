/** Docker-shaped views of an image record (pure): `image inspect` JSON and `images` rows. */
import type { ImageRecord } from './store.js';

export interface DockerImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: Record<string, unknown>;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  VirtualSize: number;
  GraphDriver: { Name: string; Data: Record<string, string> };
  RootFS: { Type: string; Layers: string[] };
  Metadata: { LastTagTime: string };
}

/** `hull image inspect` output for one image, in Docker's field order and shapes. */
export function inspectImage(img: ImageRecord, opts: { layerDirs?: string[]; addedAt?: string } = {}): DockerImageInspect {
  const c = img.config.config ?? {};
  const hist = img.config.history ?? [];
  const last = hist.length > 0 ? hist[hist.length - 1] : undefined;
  const out: DockerImageInspect = {
    Id: img.id,
    RepoTags: img.tags,
    RepoDigests: img.repoDigests,
    Parent: '',
    Comment: last?.comment ?? '',
    Created: img.created ?? opts.addedAt ?? '0001-01-01T00:00:00Z',
    DockerVersion: '',
    Author: img.config.author ?? '',
    Config: {
      Hostname: '',
      Domainname: '',
      User: c.User ?? '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      ExposedPorts: c.ExposedPorts,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: c.Env ?? null,
      Cmd: c.Cmd ?? null,
      Image: '',
      Volumes: c.Volumes ?? null,
      WorkingDir: c.WorkingDir ?? '',
      Entrypoint: c.Entrypoint ?? null,
      OnBuild: c.OnBuild ?? null,
      Labels: c.Labels ?? null,
      StopSignal: c.StopSignal,
      ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
      ...(c.Shell ? { Shell: c.Shell } : {}),
    },
    Architecture: img.config.architecture,
    Variant: img.config.variant,
    Os: img.config.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: {
      Name: 'overlay',
      Data: opts.layerDirs && opts.layerDirs.length > 0 ? { LowerDir: [...opts.layerDirs].reverse().join(':') } : {},
    },
    RootFS: { Type: 'layers', Layers: img.layers.map((l) => l.diffId) },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
  // Drop undefined optional fields the way Go's omitempty does.
  if (out.Variant === undefined) delete out.Variant;
  for (const k of ['ExposedPorts', 'StopSignal']) if (out.Config[k] === undefined) delete out.Config[k];
  return out;
}

/** Split a familiar tag 'localhost:5000/app:v1' into repository and tag. */
export function splitTag(t: string): { repository: string; tag: string } {
  const slash = t.lastIndexOf('/');
  const colon = t.lastIndexOf(':');
  if (colon > slash) return { repository: t.slice(0, colon), tag: t.slice(colon + 1) };
  return { repository: t, tag: 'latest' };
}

export interface ImageRow {
  Repository: string;
  Tag: string;
  Digest: string;
  ID: string;
  CreatedAt: string;
  Size: number;
  Containers?: number;
}

/** One `hull images` row per tag (or one `<none>` row for an untagged image). */
export function imageRows(img: ImageRecord, addedAt?: string): ImageRow[] {
  const created = img.created ?? addedAt ?? '';
  const digestOf = (repo: string) => img.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
  if (img.tags.length === 0) {
    const d = img.repoDigests[0];
    return [
      {
        Repository: d ? d.split('@')[0]! : '<none>',
        Tag: '<none>',
        Digest: d ? d.split('@')[1]! : '<none>',
        ID: img.id,
        CreatedAt: created,
        Size: img.size,
      },
    ];
  }
  return img.tags.map((t) => {
    const { repository, tag } = splitTag(t);
    return { Repository: repository, Tag: tag, Digest: digestOf(repository), ID: img.id, CreatedAt: created, Size: img.size };
  });
}
