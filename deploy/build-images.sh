#!/usr/bin/env bash
# Builds Keel's container images without an image registry (nothing is
# pulled):
#   keel/keel-controller:<tag>, keel/keel-agent:<tag>, keel/keelctl:<tag>
#       FROM scratch around static binaries built here with the flags of
#       `make build` (CGO_ENABLED=0, -trimpath, the version stamped in);
#   keel/haproxy:<tag>
#       Debian's haproxy and its libraries, FROM scratch
#       (deploy/haproxy/build-image.sh).
#
# Usage: deploy/build-images.sh          (make images)
# Environment:
#   KEEL_IMAGE_TAG   image tag (default dev)
#   VERSION          version stamped into the binaries and the images' labels
#                    (default: git describe --tags --always --dirty, as make does)
#   GO               the go command (default go)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tag=${KEEL_IMAGE_TAG:-dev}
GO=${GO:-go}
log() { echo "build-images: $*"; }
die() { echo "build-images: $*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is missing: install Docker (Debian: docker.io) first"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (is dockerd running, and may this user use it?)"
command -v "$GO" >/dev/null || die "$GO is missing: Keel builds with Go 1.26"

version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
ctx=$(mktemp -d "${TMPDIR:-/tmp}/keel-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# --- static binaries -----------------------------------------------------------
log "building static binaries (version $version)"
(cd "$root" && CGO_ENABLED=0 "$GO" build -trimpath \
  -ldflags "-s -w -X github.com/keel-cloud/keel/internal/version.Version=$version" \
  -o "$ctx/bin/" ./cmd/keel-controller ./cmd/keel-agent ./cmd/keelctl)
for b in keel-controller keel-agent keelctl; do
  # A static binary has no program interpreter (PT_INTERP); FROM scratch
  # has no loader to run anything else.
  if LC_ALL=C readelf -l "$ctx/bin/$b" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    die "$b is dynamically linked: build with CGO_ENABLED=0"
  fi
done

# --- the images ---------------------------------------------------------------
# A minimal root filesystem shared by the three: users and groups (the
# binaries run as keel, 65532) and /tmp.
mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
cat > "$ctx/rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/nonexistent
keel:x:65532:65532:keel:/var/lib/keel:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOF
cat > "$ctx/rootfs/etc/group" <<'EOF'
root:x:0:
keel:x:65532:
nogroup:x:65534:
EOF

for b in keel-controller keel-agent keelctl; do
  # Each image's context: the shared root filesystem, its state directory
  # (/var/lib/keel, and /var/lib/keel/agent for the agent) and its binary.
  c=$ctx/$b
  mkdir -p "$c/bin" "$c/state"
  cp -a "$ctx/rootfs" "$c/rootfs"
  ln "$ctx/bin/$b" "$c/bin/$b" 2>/dev/null || cp "$ctx/bin/$b" "$c/bin/$b"
  [ "$b" = keel-agent ] && mkdir -p "$c/state/agent"
  chmod -R 0700 "$c/state"
  cp "$root/deploy/images/$b.Dockerfile" "$c/Dockerfile"
  old=$(docker image inspect -f '{{.Id}}' "keel/$b:$tag" 2>/dev/null || true)
  if ! out=$(docker build --force-rm --build-arg VERSION="$version" -t "keel/$b:$tag" "$c" 2>&1); then
    echo "$out" >&2
    die "docker build of keel/$b:$tag failed (output above)"
  fi
  # The image this tag named before, now untagged: removed unless a
  # container still uses it.
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "keel/$b:$tag")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  arg=--version
  [ "$b" = keelctl ] && arg=version
  got=$(docker run --rm --network none "keel/$b:$tag" $arg 2>&1) || die "keel/$b:$tag does not run: $got"
  log "built keel/$b:$tag ($got, $(docker image inspect -f '{{.Size}}' "keel/$b:$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
done

KEEL_IMAGE_TAG=$tag "$root/deploy/haproxy/build-image.sh"
