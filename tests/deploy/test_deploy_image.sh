#!/bin/sh
# The image.  Without building: deploy/Dockerfile's two stages, the build stage's packages
# against configure.ac's, the runtime stage's against the libraries the binary and the
# plugins link (dpkg -S here, on Debian 12), a non-root USER, the volumes, every ENV read
# by a command, and the HEALTHCHECK's own command line run against serve's metrics
# listener (0) and a closed port (1).  Then `make image` (deploy/image.sh): where Docker
# or Podman can build, build it and run `fluxroute version` in it with a read-only root;
# elsewhere (no daemon, no engine, no registry to pull debian:12 from) SKIP (77) with a
# notice saying why.  FR_SKIP_IMAGE=1 skips the build (it takes minutes).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
CHECK="$FR_SRCDIR/tests/deploy/deploy_check.py"
if python3 "$CHECK" image "$FLUXROUTE" "$FR_SRCDIR/deploy/Dockerfile" "$FR_SRCDIR/configure.ac" \
  "$FLUXROUTE" "$FR_BUILDDIR"/plugins/*.so >"$TMP/check.txt" 2>&1; then
  ok "Dockerfile: stages, packages, user, volumes, ENV, HEALTHCHECK ($(grep -c '^ok' "$TMP/check.txt") checks)"
else
  not_ok "Dockerfile: stages, packages, user, volumes, ENV, HEALTHCHECK" "$(grep -A3 '^not ok\|Traceback' "$TMP/check.txt" | head -20)"
fi
hc=$(sed -n 's/^HEALTHCHECK_CMD=//p' "$TMP/check.txt")
mkdir -p "$TMP/m"
printf 'keys: []\n' >"$TMP/keys.yaml"
if [ -n "$hc" ] && start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --metrics-addr 127.0.0.1:0; then
  port=${METRICS_URL##*:}
  # shellcheck disable=SC2046 # the command line splits into its words
  set -- $(echo "$hc" | sed "s/127\.0\.0\.1:9090/127.0.0.1:$port/")
  if "$FLUXROUTE" "$@" >"$TMP/out" 2>"$TMP/err"; then
    ok "the HEALTHCHECK's command passes on a running serve (fluxroute $*)"
  else
    not_ok "the HEALTHCHECK's command passes on a running serve (fluxroute $*)"
  fi
  stop_serve
  if "$FLUXROUTE" "$@" >"$TMP/out" 2>"$TMP/err"; then
    not_ok "the HEALTHCHECK's command fails once serve has stopped"
  else
    ok "the HEALTHCHECK's command fails once serve has stopped"
  fi
else
  not_ok "serve starts for the HEALTHCHECK's command"
fi
if [ "$failed" -gt 0 ]; then finish; exit 1; fi
echo "$passed passed, $failed failed (before make image)"
if [ "${FR_SKIP_IMAGE:-}" = 1 ]; then
  echo "make image: SKIPPED: FR_SKIP_IMAGE=1"
  exit 77
fi
sh "$FR_SRCDIR/deploy/image.sh" "$FR_SRCDIR" "fluxroute:check"
