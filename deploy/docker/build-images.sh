#!/usr/bin/env bash
# Builds the two Postgate images without any container registry:
#   1. a Debian 12 base image from the Debian mirror apt already uses (debootstrap --variant=minbase),
#      imported as localhost/postgate-base:bookworm (once; reused afterwards);
#   2. deploy/docker/Dockerfile with buildah (chroot isolation, vfs storage), BASE_IMAGE set to it:
#      localhost/postgate-smtp-gateway:$VERSION and localhost/postgate-queue-service:$VERSION.
# Storage: $POSTGATE_CONTAINERS (default .tools/containers). Push with
#   buildah --root "$POSTGATE_CONTAINERS/root" --runroot "$POSTGATE_CONTAINERS/run" --storage-driver vfs \
#     push localhost/postgate-smtp-gateway:0.1.0 docker://registry.example.com/postgate/postgate-smtp-gateway:0.1.0
# Usage: deploy/docker/build-images.sh [--prebuilt BIN_DIR] [VERSION]
#   By default the Dockerfile's build stage compiles the binaries (the long part of the build).
#   --prebuilt BIN_DIR puts the binaries of a Release build on this Debian 12 machine (e.g.
#   build/bin) into the images instead, stripped, with the runtime packages they link found here
#   (scripts/runtime-packages.sh); tests/deploy/test_images.py builds its images so.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
prebuilt=""
if [ "${1:-}" = --prebuilt ]; then
  prebuilt="$(cd "${2:?--prebuilt needs the directory holding smtp-gateway, queue-service, queuectl and queue-console}" && pwd)"
  shift 2
fi
version="${1:-0.1.0}"
store="${POSTGATE_CONTAINERS:-$root/.tools/containers}"
storage=(--root "$store/root" --runroot "$store/run" --storage-driver vfs)
base=localhost/postgate-base:bookworm
mkdir -p "$store"

for tool in buildah podman debootstrap; do
  command -v "$tool" >/dev/null || { "$root/scripts/deps.sh" test; break; }
done

if ! podman "${storage[@]}" image exists "$base"; then
  # The mirror apt uses here (deb.debian.org unless sources say otherwise).
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -vE '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$store/rootfs"
  rm -rf "$rootfs"
  echo "postgate: debootstrap bookworm from $mirror" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
  tar -C "$rootfs" -c . | podman "${storage[@]}" import - "$base" >&2
  rm -rf "$rootfs"
fi

revision="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
binaries=source
if [ -n "$prebuilt" ]; then
  binaries=prebuilt
  staging="$root/.prebuilt"  # In the build context; the Dockerfile's `prebuilt` stage copies it.
  rm -rf "$staging" && mkdir -p "$staging"
  trap 'rm -rf "$staging"' EXIT
  for binary in smtp-gateway queue-service queuectl queue-console; do
    [ -x "$prebuilt/$binary" ] || { echo "build-images.sh: $prebuilt/$binary: no such executable" >&2; exit 1; }
    strip -o "$staging/$binary" "$prebuilt/$binary"
  done
  "$root/scripts/runtime-packages.sh" "$staging"/* > "$staging/runtime-packages.txt"
fi
for target in gateway queue; do
  name=postgate-smtp-gateway
  [ "$target" = queue ] && name=postgate-queue-service
  echo "postgate: building localhost/$name:$version" >&2
  buildah "${storage[@]}" bud --isolation chroot --layers --network host \
    --build-arg BASE_IMAGE="$base" --build-arg BINARIES="$binaries" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --target "$target" -t "localhost/$name:$version" -f "$root/deploy/docker/Dockerfile" "$root" >&2
done
echo "localhost/postgate-smtp-gateway:$version localhost/postgate-queue-service:$version"
