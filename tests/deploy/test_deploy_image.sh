#!/bin/sh
# `make image` (deploy/image.sh): where Docker or Podman can build, build deploy/Dockerfile
# and run `fluxroute version` in it with a read-only root; elsewhere (no daemon, no
# engine, no registry to pull debian:12 from) exit 77, SKIP, with a notice saying why.
# FR_SKIP_IMAGE=1 skips it too (a build takes minutes).
if [ "${FR_SKIP_IMAGE:-}" = 1 ]; then
  echo "make image: SKIPPED: FR_SKIP_IMAGE=1"
  exit 77
fi
exec sh "${FR_SRCDIR:-.}/deploy/image.sh" "${FR_SRCDIR:-.}" "fluxroute:check"
