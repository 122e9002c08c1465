#!/bin/sh
# End-to-end resilience: process isolation (crash, hang), retries, breakers, fallbacks,
# and Ctrl-C during a retry backoff.
. "${FR_SRCDIR:-.}/tests/lib.sh"
R="$FR_SRCDIR/tests/data/resilience"

start=$(date +%s%N)
fr run "$R/isolation.yaml" --json
took_ms=$((($(date +%s%N) - start) / 1000000))
expect_rc "isolation: run exits 1, not killed" 1
expect_jq "isolation" '.status == "failed"'
expect_jq "isolation: crash" '.steps[0].step == "crash" and .steps[0].error.class == "crashed"'
expect_jq "isolation: crash message" '.steps[0].error.message | test("signal 11")'
expect_jq "isolation: descendant skipped" '.steps[1].status == "skipped"'
expect_jq "isolation: hang killed" '[.steps[] | select(.step == "hang")][0].error.class == "timeout"'
expect_jq "isolation: hang message" '[.steps[] | select(.step == "hang")][0].error.message | test("killed")'
expect_jq "isolation: crash then retry succeeds" '[.steps[] | select(.step == "recovers")][0] | .status == "succeeded" and (.attempts | length == 2) and .attempts[0].class == "crashed"'
expect_jq "isolation: other branch" '[.steps[] | select(.step == "independent")][0].status == "succeeded"'
if [ "$took_ms" -lt 5000 ]; then ok "isolation: hang killed at its timeout (${took_ms}ms)"; else not_ok "isolation: hang killed at its timeout" "took ${took_ms}ms"; fi

# An in-process plugin that hangs for good: the run is reported at its deadline (the
# step's own thread is left behind) and the process exits.
start=$(date +%s%N)
fr run "$R/inprocess_hang.yaml" --json
took_ms=$((($(date +%s%N) - start) / 1000000))
expect_rc "in-process hang: run succeeds by its fallback" 0
expect_jq "in-process hang: abandoned, fallback answered" '.steps[0].answered_by == "rescue" and .steps[0].attempts[0].class == "timeout" and (.steps[0].attempts[0].message | test("hung"))'
expect_jq "in-process hang: next step ran" '.steps[1].status == "succeeded"'
expect_err "in-process hang: named on stderr" 'chaos.so hung past its deadline'
if [ "$took_ms" -lt 5000 ]; then ok "in-process hang: reported at the deadline (${took_ms}ms)"; else not_ok "in-process hang: reported at the deadline" "took ${took_ms}ms"; fi

fr run "$R/policies.yaml" --json --seed 5
expect_rc "policies" 0
expect_jq "retries" '.steps[0].attempts | length == 3 and .[0].backoff_us == 0 and .[1].backoff_us >= 5000 and .[1].backoff_us <= 10000 and .[2].backoff_us >= 10000 and .[2].backoff_us <= 20000'
expect_jq "fallback answered" '.steps[1].answered_by == "backup" and ([.steps[1].attempts[].agent] == ["broken", "broken", "backup"])'
expect_jq "breaker fail-fast" '.steps[2].attempts[0].class == "circuit_open" and .steps[2].answered_by == "backup"'
expect_jq "breaker transitions" '.breaker_transitions == [{"breaker": "agent:broken", "from": "closed", "to": "open", "step": "b", "attempt": 2, "reason": "failure_threshold consecutive failures"}]'
fr run "$R/policies.yaml" --json --seed 5
cp "$TMP/out" "$TMP/first.json"
fr run "$R/policies.yaml" --json --seed 5
if [ "$(jq -c '[.steps[].attempts[].backoff_us]' "$TMP/out")" = "$(jq -c '[.steps[].attempts[].backoff_us]' "$TMP/first.json")" ]; then
  ok "same seed, same backoff"; else not_ok "same seed, same backoff"; fi

# A provider's own breaker: network failures open it, then calls fail fast.
FR_RESILIENCE_KEY=sk-unused fr run "$R/provider_breaker.yaml" --json
expect_rc "provider breaker" 0
expect_jq "provider breaker: retried network failures" '[.steps[0].attempts[] | select(.agent == "ask") | .class] == ["network", "network", "circuit_open"]'
expect_jq "provider breaker: fallback answered" '.steps[0].answered_by == "offline"'
expect_jq "provider breaker: transition" '.breaker_transitions == [{"breaker": "provider:down", "from": "closed", "to": "open", "step": "s", "attempt": 2, "reason": "failure_threshold consecutive failures"}]'

# Ctrl-C while waiting out a 30s backoff: the run stops at once.
"$FLUXROUTE" run "$R/backoff_cancel.yaml" --json >"$TMP/out" 2>"$TMP/err" &
pid=$!
sleep 1
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_rc "Ctrl-C during backoff" 130
expect_jq "Ctrl-C during backoff" '.status == "cancelled" and .steps[0].error.class == "cancelled" and (.steps[0].attempts | length == 1)'
finish
