#!/usr/bin/env bash
# Make a multi-layer image archive of random data for bench/load.sh.
# Usage: load-make-image.sh OUT.tar [TOTAL_MIB] [LAYERS]
#   TOTAL_MIB  total size of file data, MiB (default 100)
#   LAYERS     number of layers (default 4); each holds one big random file and 200 small ones
# Layers are gzip-compressed, as registries serve them. The archive is an OCI image layout with
# Docker's manifest.json beside it (the shape `hull save` writes), which both hull and podman load.
set -euo pipefail
out=${1:?usage: load-make-image.sh OUT.tar [TOTAL_MIB] [LAYERS]}
total=${2:-100}
nlayers=${3:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/hull-bench-img.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci/blobs/sha256"
per=$(( total * 1024 / nlayers ))   # KiB per layer
small=200
diff_ids=()
layers_json=()
layer_paths=()
for i in $(seq 1 "$nlayers"); do
  r=$work/rootfs$i
  mkdir -p "$r/data$i/small"
  # One big random file plus many small ones (a mix like real images).
  big_kib=$(( per - small * 4 ))
  head -c "$(( big_kib * 1024 ))" /dev/urandom > "$r/data$i/blob.bin"
  for j in $(seq 1 "$small"); do head -c 4096 /dev/urandom > "$r/data$i/small/f$j"; done
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C "$r" -cf "$work/layer$i.tar" .
  diff_ids+=("sha256:$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)")
  gzip -1 -n -c "$work/layer$i.tar" > "$work/layer$i.tar.gz"
  d=$(sha256sum "$work/layer$i.tar.gz" | cut -d' ' -f1)
  s=$(stat -c %s "$work/layer$i.tar.gz")
  mv "$work/layer$i.tar.gz" "$work/oci/blobs/sha256/$d"
  rm -rf "$r" "$work/layer$i.tar"
  layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}")
  layer_paths+=("\"blobs/sha256/$d\"")
done
join() { local IFS=,; echo "$*"; }
diff_json=$(printf '"%s",' "${diff_ids[@]}"); diff_json=${diff_json%,}
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2023-11-14T22:13:20Z\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_json]}}"
printf '%s' "$config" > "$work/config"
cd_=$(sha256sum "$work/config" | cut -d' ' -f1); cs=$(stat -c %s "$work/config")
mv "$work/config" "$work/oci/blobs/sha256/$cd_"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cd_\",\"size\":$cs},\"layers\":[$(join "${layers_json[@]}")]}"
printf '%s' "$manifest" > "$work/manifest"
md=$(sha256sum "$work/manifest" | cut -d' ' -f1); ms=$(stat -c %s "$work/manifest")
mv "$work/manifest" "$work/oci/blobs/sha256/$md"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/loadbench:latest","org.opencontainers.image.ref.name":"latest"}}]}' "$md" "$ms" > "$work/oci/index.json"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["loadbench:latest"],"Layers":[%s]}]' "$cd_" "$(join "${layer_paths[@]}")" > "$work/oci/manifest.json"
tar --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out.tmp" oci-layout blobs index.json manifest.json
mv "$out.tmp" "$out"
echo "sha256:$cd_"
