#!/bin/sh
# ai_chain10 benchmark: 10 chained llm steps (openai plugin) against tests/fake_vendor
# answering after a fixed delay, compared with a bare libcurl loop of the same 10
# requests.  Prints one JSON object (overhead_us_per_run is the figure; target <= 500).
#   tests/bench_ai.sh [BUILDDIR [SRCDIR]]
#   env: BENCH_PAIRS (150), BENCH_WARMUP (5), BENCH_DELAY_MS (20)
set -eu
BUILDDIR=${1:-${FR_BUILDDIR:-.}}
SRCDIR=${2:-${FR_SRCDIR:-$BUILDDIR}}
KEY=sk-bench-not-secret
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-ai.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkfifo "$TMP/in"
"$BUILDDIR/tests/fake_vendor" --openai-key "$KEY" --delay-ms "${BENCH_DELAY_MS:-20}" \
  <"$TMP/in" >"$TMP/port" &
pid=$!
exec 9>"$TMP/in" # the server also exits when this script goes away
port=""
for _ in $(seq 1 100); do
  port=$(awk '/^port [0-9]+$/ {print $2; exit}' "$TMP/port")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "bench_ai: fake_vendor did not start" >&2; exit 1; }

sed "s|127.0.0.1:18080|127.0.0.1:$port|" "$SRCDIR/manifests/bench/ai_chain10.yaml" >"$TMP/ai_chain10.yaml"
FAKE_OPENAI_KEY=$KEY "$BUILDDIR/tests/bench_ai_chain" "$BUILDDIR/plugins" "$TMP/ai_chain10.yaml" \
  "$port" "$KEY" "${BENCH_PAIRS:-150}" "${BENCH_WARMUP:-5}"
