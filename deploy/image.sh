#!/bin/sh
# `make image`: builds deploy/Dockerfile with Docker or Podman, then runs `fluxroute
# version` in the image (read-only root, as deployments run it).
# Usage: deploy/image.sh SRCDIR [IMAGE]   (IMAGE default fluxroute:dev; FR_IMAGE_ENGINE
# picks docker or podman).  Exit 0 built and checked, 1 failed, 77 skipped (no engine that
# can build here: no Docker daemon, no Podman, or no way to pull the base images), with a
# notice saying which.
set -eu
src=${1:?usage: image.sh SRCDIR [IMAGE]}
image=${2:-fluxroute:dev}

skip() {
  echo "make image: SKIPPED: $*" >&2
  echo "make image: docs/deploy.md, \"Container image\", says how to build it elsewhere" >&2
  exit 77
}

engine=${FR_IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
  for e in docker podman; do
    if command -v "$e" >/dev/null 2>&1 && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
  done
fi
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1; then
    skip "docker is installed but its daemon cannot be reached ($(docker info 2>&1 | grep -m1 -i 'cannot\|error' || echo 'docker info failed'))"
  fi
  skip "neither docker nor podman is installed"
fi

ignore=""
[ "$(basename "$engine")" = podman ] && ignore="--ignorefile $src/deploy/Dockerfile.dockerignore"
echo "make image: $engine build -f deploy/Dockerfile -t $image $src"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
# shellcheck disable=SC2086
"$engine" build $ignore -f "$src/deploy/Dockerfile" -t "$image" "$src" >"$log" 2>&1 || rc=$?
cat "$log"
if [ "$rc" != 0 ]; then
  # CI machines here have an engine but no registry access: not a failure of the Dockerfile.
  if grep -qi 'pull access denied\|failed to resolve\|dial tcp\|no such host\|failed to do request\|TLS handshake timeout\|i/o timeout\|connection refused' "$log" &&
    grep -qi 'debian:12' "$log"; then
    skip "$engine cannot pull the base images debian:12 and debian:12-slim here"
  fi
  echo "make image: FAILED: $engine build (output above)" >&2
  exit 1
fi
"$engine" image inspect "$image" >/dev/null 2>&1 || { echo "make image: FAILED: no image $image after the build" >&2; exit 1; }
out=$("$engine" run --rm --read-only --tmpfs /tmp "$image" version) || {
  echo "make image: FAILED: $engine run $image version" >&2
  exit 1
}
echo "$out"
echo "$out" | grep -q fluxroute || { echo "make image: FAILED: 'version' printed no version" >&2; exit 1; }
echo "make image: built $image; health check: $("$engine" image inspect --format '{{json .Config.Healthcheck.Test}}' "$image" 2>/dev/null || echo '?')"
