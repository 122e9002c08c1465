#!/bin/sh
# The web console's first load (make bench; issue 28: under 100 ms from a local server):
# serve on a loopback port with one run made, then tests/bench_console.mjs in Debian's
# chromium.  Prints one JSON object ({"skipped": WHY} without chromium or node_modules).
# env: BENCH_CONSOLE_SAMPLES (20).
set -eu
FLUXROUTE=$1
SRCDIR=$2
N=${BENCH_CONSOLE_SAMPLES:-20}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo '{"skipped": "no chromium (apt-get install chromium)"}'; exit 0; }
[ -d "$SRCDIR/tests/node_modules/puppeteer-core" ] ||
  { echo '{"skipped": "tests/node_modules is absent (./bootstrap.sh runs npm ci --prefix tests)"}'; exit 0; }
# serve on a loopback port as the end-to-end tests start it (tests/serve_lib.sh).
export FLUXROUTE FR_SRCDIR="$SRCDIR"
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/serve_lib.sh"
mkdir -p "$TMP/m"
cp "$SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
KEY=bench-console-key-0123
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(sha "$KEY")" >"$TMP/keys.yaml"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" >&2 || exit 1
url=$SERVE_URL
curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -d '{"manifest": "echo.yaml"}' "$url/v1/run"
bytes=$(curl -s "$url/ui" | wc -c)
for f in $(sed -n '/^FR_CONSOLE_ASSETS = /,/[^\\]$/p' "$SRCDIR/core/serve/serve.am" |
  sed -e 's/^FR_CONSOLE_ASSETS = //' -e 's/\\$//'); do
  [ "$f" = index.html ] || bytes=$((bytes + $(curl -s "$url/ui/$f" | wc -c)))
done
out=$(cd "$SRCDIR/tests" && CHROMIUM="$CHROMIUM" timeout 300 node bench_console.mjs "$url" "$KEY" "$N")
echo "$out" | jq -c --argjson b "$bytes" '. + {bytes: $b}'
