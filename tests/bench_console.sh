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
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-console.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/m"
cp "$SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
KEY=bench-console-key-0123
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$TMP/keys.yaml"
"$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
  >"$TMP/out" 2>"$TMP/err" &
pid=$!
url=""
for _ in $(seq 1 200); do
  url=$(sed -n 's/^listening on //p' "$TMP/out")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$TMP/err" >&2; exit 1; }
curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -d '{"manifest": "echo.yaml"}' "$url/v1/run"
bytes=$(curl -s "$url/ui" | wc -c)
for f in $(sed -n '/^FR_CONSOLE_ASSETS = /,/[^\\]$/p' "$SRCDIR/core/serve/serve.am" |
  sed -e 's/^FR_CONSOLE_ASSETS = //' -e 's/\\$//'); do
  [ "$f" = index.html ] || bytes=$((bytes + $(curl -s "$url/ui/$f" | wc -c)))
done
out=$(cd "$SRCDIR/tests" && CHROMIUM="$CHROMIUM" timeout 300 node bench_console.mjs "$url" "$KEY" "$N")
echo "$out" | jq -c --argjson b "$bytes" '. + {bytes: $b}'
