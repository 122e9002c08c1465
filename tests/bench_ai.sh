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

. "$SRCDIR/tests/bench_lib.sh"
bench_start_fake_vendor bench_ai --openai-key "$KEY" --delay-ms "${BENCH_DELAY_MS:-20}"
pid=$fake_pid

sed "s|127.0.0.1:18080|127.0.0.1:$port|" "$SRCDIR/manifests/bench/ai_chain10.yaml" >"$TMP/ai_chain10.yaml"
FAKE_OPENAI_KEY=$KEY "$BUILDDIR/tests/bench_ai_chain" "$BUILDDIR/plugins" "$TMP/ai_chain10.yaml" \
  "$port" "$KEY" "${BENCH_PAIRS:-150}" "${BENCH_WARMUP:-5}"
