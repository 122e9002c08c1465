#!/bin/sh
# The web console's first load (make bench; issue 28: under 100 ms from a local server):
# serve on a loopback port with one run made, then tests/bench_console.mjs in Debian's
# chromium.  Prints one JSON object ({"skipped": WHY} without chromium or node_modules):
# p50, p90 and p99 of the load event, of the runs list drawn and of /healthz in the same
# browser, and page_bytes (what GET /ui sends: the whole first load).
# env: BENCH_CONSOLE_SAMPLES (40); FLUXROUTE_BEFORE, another build's fluxroute (e.g. main's)
# to measure beside this one, alternating loads ("before" in the output).
set -eu
FLUXROUTE=$1
SRCDIR=$2
N=${BENCH_CONSOLE_SAMPLES:-40}
BEFORE=${FLUXROUTE_BEFORE:-}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo '{"skipped": "no chromium (apt-get install chromium)"}'; exit 0; }
[ -d "$SRCDIR/tests/node_modules/puppeteer-core" ] ||
  { echo '{"skipped": "tests/node_modules is absent (./bootstrap.sh runs npm ci --prefix tests)"}'; exit 0; }
# serve on a loopback port as the end-to-end tests start it (tests/serve_lib.sh).
export FLUXROUTE FR_SRCDIR="$SRCDIR"
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/serve_lib.sh"
BEFORE_PID=""
trap 'stop_serve; [ -z "$BEFORE_PID" ] || { kill -TERM "$BEFORE_PID"; wait "$BEFORE_PID"; } 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/m"
cp "$SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
KEY=bench-console-key-0123
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(sha "$KEY")" >"$TMP/keys.yaml"
before_url=""
if [ -n "$BEFORE" ]; then
  FLUXROUTE=$BEFORE start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" >&2 || exit 1
  BEFORE_PID=$SERVE_PID
  before_url=$SERVE_URL
  SERVE_PID=""
  curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -d '{"manifest": "echo.yaml"}' "$before_url/v1/run"
fi
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" >&2 || exit 1
url=$SERVE_URL
curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -d '{"manifest": "echo.yaml"}' "$url/v1/run"
bytes=$(curl -sf "$url/ui" | wc -c)
# shellcheck disable=SC2086 # no before server: no argument
out=$(cd "$SRCDIR/tests" && CHROMIUM="$CHROMIUM" timeout 600 node bench_console.mjs "$url" "$KEY" "$N" $before_url)
echo "$out" | jq -c --argjson b "$bytes" '. + {page_bytes: $b}'
