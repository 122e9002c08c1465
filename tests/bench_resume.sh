#!/bin/sh
# Resume latency (issue 30): a run of 100 chained llm steps against tests/fake_vendor
# (answering after BENCH_RESUME_DELAY_MS, 20 ms) whose journal holds its first 90 steps
# (a complete journal cut after the 90th step's outcome, as a process killed there leaves
# it), finished by `fluxroute resume`; against what it should cost: `fluxroute replay` of a
# recorded run of the same 90 steps (the prefix at replay speed) plus a fresh
# `fluxroute run` of the 10 live steps, journaled as the resumed run is (--journal-sync
# step, the default; the unjournaled run's time is given too).  Each timed BENCH_RESUME_ROUNDS times (5), the
# median kept; one JSON object on stdout (milliseconds, whole processes).
#   tests/bench_resume.sh FLUXROUTE SRCDIR BUILDDIR
set -eu
FLUXROUTE=$1
SRCDIR=$2
BUILDDIR=$3
ROUNDS=${BENCH_RESUME_ROUNDS:-5}
DELAY=${BENCH_RESUME_DELAY_MS:-20}
KEY=sk-bench-not-secret
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-resume.XXXXXX")
fake_pid=""
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

. "$SRCDIR/tests/bench_lib.sh"
bench_start_fake_vendor bench_resume --openai-key "$KEY" --delay-ms "$DELAY"
export FAKE_OPENAI_KEY=$KEY

# manifest FILE FIRST LAST: steps sFIRST..sLAST chained (the first one asks the input).
manifest() {
  {
    echo "router: {namespace: bench, default_timeout: 10s, run_timeout: 10m}"
    echo "providers:"
    echo "  - {id: fake, plugin: openai, config: {model: gpt-fake, base_url: \"http://127.0.0.1:$port/v1\", api_key_env: FAKE_OPENAI_KEY}}"
    echo "agents:"
    echo "  - {id: first, plugin: llm, provider: fake, config: {prompt: \"{{input.text}}\", max_tokens: 32}}"
    echo "  - {id: next, plugin: llm, provider: fake, config: {prompt: \"Continue: {{steps}}\", max_tokens: 32}}"
    echo "pipeline:"
    i=$2
    echo "  - {step: s$(printf %03d "$i"), agent: first}"
    while [ "$i" -lt "$3" ]; do
      i=$((i + 1))
      echo "  - {step: s$(printf %03d "$i"), agent: next, depends_on: s$(printf %03d $((i - 1)))}"
    done
    echo "input: {text: hello}"
  } >"$1"
}
manifest "$TMP/m100.yaml" 1 100
manifest "$TMP/m90.yaml" 1 90
manifest "$TMP/m10.yaml" 91 100

# ms CMD...: the wall time of one command, in milliseconds (its output discarded).
ms() {
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$TMP/err" || { echo "bench_resume: $* failed: $(cat "$TMP/err")" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The journal of 100 steps, cut after the 90th step's outcome; the prefix's trace.
full_ms=$(ms "$FLUXROUTE" run "$TMP/m100.yaml" --journal "$TMP/full.journal" --plugin-dir "$BUILDDIR/plugins")
awk '{ print } /^[0-9a-f]+ \{"t":"step","step":"s090"/ { exit }' "$TMP/full.journal" >"$TMP/cut.journal"
steps=$(grep -c '"t":"step"' "$TMP/cut.journal")
[ "$steps" = 90 ] || { echo "bench_resume: the cut journal has $steps steps, not 90" >&2; exit 1; }
"$FLUXROUTE" run "$TMP/m90.yaml" --trace "$TMP/prefix.json" --plugin-dir "$BUILDDIR/plugins" >/dev/null

: >"$TMP/resume" >"$TMP/replay" >"$TMP/live" >"$TMP/live_j" >"$TMP/version"
for i in $(seq 1 "$ROUNDS"); do
  cp "$TMP/cut.journal" "$TMP/r.journal"
  ms "$FLUXROUTE" resume "$TMP/r.journal" --plugin-dir "$BUILDDIR/plugins" >>"$TMP/resume"
  ms "$FLUXROUTE" replay "$TMP/prefix.json" --plugin-dir "$BUILDDIR/plugins" >>"$TMP/replay"
  ms "$FLUXROUTE" run "$TMP/m10.yaml" --plugin-dir "$BUILDDIR/plugins" --journal "$TMP/l$i.journal" >>"$TMP/live_j"
  ms "$FLUXROUTE" run "$TMP/m10.yaml" --plugin-dir "$BUILDDIR/plugins" >>"$TMP/live"
  ms "$FLUXROUTE" version >>"$TMP/version"
done
# The resumed run went live at step s091 and ran 10 steps.
"$FLUXROUTE" resume "$TMP/r.journal" --json --plugin-dir "$BUILDDIR/plugins" >"$TMP/again.json"
live=$(jq '[.steps[] | select(.from_journal | not)] | length' "$TMP/again.json")
[ "$live" = 0 ] || { echo "bench_resume: a finished journal ran $live steps again" >&2; exit 1; }

resume=$(median <"$TMP/resume")
replay=$(median <"$TMP/replay")
fresh=$(median <"$TMP/live")
fresh_j=$(median <"$TMP/live_j")
start=$(median <"$TMP/version")
jq -n --argjson rounds "$ROUNDS" --argjson delay "$DELAY" --argjson full "$full_ms" \
  --argjson resume "$resume" --argjson replay "$replay" --argjson live "$fresh_j" \
  --argjson live_nj "$fresh" \
  --argjson start "$start" --argjson bytes "$(wc -c <"$TMP/cut.journal")" '{
    rounds: $rounds, provider_delay_ms: $delay, journal_bytes: $bytes,
    full_run_100_ms: $full, resume_ms: $resume, replay_prefix_90_ms: $replay,
    fresh_run_10_ms: $live, fresh_run_10_unjournaled_ms: $live_nj, process_start_ms: $start,
    expected_ms: ($replay + $live - $start),
    over_expected_ms: ($resume - ($replay + $live - $start))}'
