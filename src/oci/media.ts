/** Media types of the OCI image spec and of Docker's v2 schema 2, as hull accepts them. */
export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondist: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export const INDEX_TYPES: readonly string[] = [MT.ociIndex, MT.dockerManifestList];
export const MANIFEST_TYPES: readonly string[] = [MT.ociManifest, MT.dockerManifest];

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** How a layer blob is compressed, from its media type; undefined if not a layer type. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  switch (mediaType) {
    case MT.ociLayer:
    case MT.ociLayerNondist:
    case MT.dockerLayer:
      return 'none';
    case MT.ociLayerGzip:
    case MT.ociLayerNondistGzip:
    case MT.dockerLayerGzip:
    case MT.dockerLayerForeignGzip:
      return 'gzip';
    case MT.ociLayerZstd:
      return 'zstd';
    default:
      return undefined;
  }
}
