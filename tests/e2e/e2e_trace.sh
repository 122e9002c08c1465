#!/bin/sh
# Trace recording, offline replay and divergence debugging, end to end.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
T="$FR_SRCDIR/tests/data/trace"
P="$FR_BUILDDIR/tests/plugins/.libs"

# ---- record -> replay round trips ----------------------------------------------------------
for name in sequential diamond flaky fallback; do
  fr run "$T/$name.yaml" --plugin-dir "$P" --trace "$TMP/$name.json" --json
  if [ -s "$TMP/$name.json" ]; then ok "$name: trace written"; else not_ok "$name: trace written"; fi
  fr replay "$TMP/$name.json" --plugin-dir "$P"
  expect_rc "$name: replay" 0
  expect_out "$name: replay" "replay identical"
done
fr run "$FR_SRCDIR/manifests/bench/parallel100.yaml" --trace "$TMP/parallel.json"
fr replay "$TMP/parallel.json"
expect_rc "parallel100: replay" 0
fr run "$FR_SRCDIR/manifests/hello.yaml" --trace "$TMP/hello.json"
fr replay "$TMP/hello.json"
expect_rc "hello (llm + mock): replay" 0

# What the flaky trace holds: retries, Retry-After, a crash, a timeout, a skip.
J="$TMP/flaky.json"
cp "$J" "$TMP/out"
expect_jq "trace header" '.format == "fluxroute-trace" and .version == 2 and (.providers | type == "array") and (.manifest_sha256 | length == 64) and (.manifest | contains("retried"))'
expect_jq "trace plugins" '[.plugins[].name] | contains(["chaos", "ratelimit"]) and all(.[]; true)'
expect_jq "trace plugin hashes" '[.plugins[].sha256 | length == 64] | all'
expect_jq "retries recorded" '[.steps[] | select(.step == "retried")][0].attempts | length == 3 and .[1].backoff_us > 0'
expect_jq "Retry-After recorded" '[.steps[] | select(.step == "rate_limited")][0].attempts[1].backoff_us == 30000'
expect_jq "crash recorded" '[.steps[] | select(.step == "crashed_once")][0].attempts[0].class == "crashed"'
expect_jq "timeout recorded as effect" '[.steps[] | select(.step == "timed_out")][0].attempts[0].effects | map(.kind) == ["sleep"] and .[0].status == "TIMEOUT"'
expect_jq "skip recorded" '[.steps[] | select(.step == "skipped")][0].status == "skipped"'
# Two recordings of the same behaviour differ only in timing fields.
fr run "$T/sequential.yaml" --plugin-dir "$P" --trace "$TMP/seq2.json" --seed 11
fr run "$T/sequential.yaml" --plugin-dir "$P" --trace "$TMP/seq3.json" --seed 11
fr debug "$TMP/seq2.json" "$TMP/seq3.json"
expect_rc "same behaviour, same trace" 0
expect_out "same behaviour, same trace" "traces identical"
strip='del(.run_id, .started_at, .finished_at) | del(.. | .duration_us?, .started_us?) | del(.. | select(type == "object" and .kind == "clock") | .value)'
if [ "$(jq -S "$strip" "$TMP/seq2.json")" = "$(jq -S "$strip" "$TMP/seq3.json")" ]; then
  ok "canonical: only timing fields differ"; else not_ok "canonical: only timing fields differ"; fi
TRACE_OUTPUT="$TMP/env.json" fr run "$T/sequential.yaml"
if jq -e '.format == "fluxroute-trace"' "$TMP/env.json" >/dev/null 2>&1; then ok "TRACE_OUTPUT"; else not_ok "TRACE_OUTPUT"; fi

# ---- HTTP through the host: replay needs no server -------------------------------------------
start_fake || exit 1
cat > "$TMP/fetch.yaml" <<YAML
agents:
  - {id: get, plugin: fetch, config: {url: "http://127.0.0.1:$FAKE_PORT/_stats"}}
pipeline:
  - {step: one, agent: get}
  - {step: two, agent: get, depends_on: one}
YAML
fr run "$TMP/fetch.yaml" --plugin-dir "$P" --trace "$TMP/fetch.json" --json
expect_rc "http: recorded run" 0
cp "$TMP/fetch.json" "$TMP/out"
expect_jq "http effect" '.steps[0].attempts[0].effects[0] | .kind == "http" and .request.method == "GET" and .response.status == 200'
stop_fakes
fr replay "$TMP/fetch.json" --plugin-dir "$P"
expect_rc "http: replay with the server gone" 0
# A plugin that now makes another request: the divergence is at that call, with it.
sed 's|/_stats|/_reset|' "$TMP/fetch.yaml" > "$TMP/fetch2.yaml"
fr replay "$TMP/fetch.json" --plugin-dir "$P" --manifest "$TMP/fetch2.yaml"
expect_rc "http: a different request diverges" 1
expect_out "http: divergence at the call" "effects[0].request"
expect_out "http: with the request it tried" "/_reset"

# ---- providers: replay needs neither server nor key -----------------------------------------
export FR_TRACE_KEY=sk-trace-secret-4242
start_fake --openai-key "$FR_TRACE_KEY" --anthropic-key "$FR_TRACE_KEY" --gemini-key "$FR_TRACE_KEY" || exit 1
for v in openai anthropic gemini; do
  url="http://127.0.0.1:$FAKE_PORT"; [ "$v" = openai ] && url="$url/v1"
  manifest "$TMP/$v.yaml" "$v" "$v-model" "$url" FR_TRACE_KEY false
  fr run "$TMP/$v.yaml" --trace "$TMP/$v-trace.json" --json
  expect_rc "$v: recorded run" 0
  if grep -q "$FR_TRACE_KEY" "$TMP/$v-trace.json"; then not_ok "$v: the key is not in the trace"; else ok "$v: the key is not in the trace"; fi
done
stop_fakes
for v in openai anthropic gemini; do
  env -u FR_TRACE_KEY "$FLUXROUTE" replay "$TMP/$v-trace.json" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  expect_rc "$v: replay offline without the key" 0
done
# A secret option written inline in a manifest is scrubbed too.
cat > "$TMP/inline.yaml" <<YAML
providers:
  - {id: vendor, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:1/v1", api_key_env: FR_TRACE_KEY}}
agents:
  - {id: e, plugin: echo}
pipeline:
  - {step: a, agent: e}
input: {note: "key is $FR_TRACE_KEY"}
YAML
fr run "$TMP/inline.yaml" --trace "$TMP/inline.json"
if grep -q "$FR_TRACE_KEY" "$TMP/inline.json"; then not_ok "secret scrubbed from input and outputs"; else ok "secret scrubbed from input and outputs"; fi

# ---- plugin leases: taken through the host, recorded, replayed without a backend ------------------
COORDINATION_ENABLED=1 COORDINATION_MODE=memory fr run "$T/locker.yaml" --plugin-dir "$P" --trace "$TMP/locker.json" --json
expect_rc "plugin leases" 0
expect_jq "plugin leases: tokens increase" '[.steps[].output.fencing_token] as $t | $t[0] < $t[1] and $t[1] < $t[2] and ([.steps[].output.released] | all)'
expect_jq "plugin leases: isolated plugin too" '.steps[2].status == "succeeded"'
cp "$TMP/locker.json" "$TMP/out"
expect_jq "plugin leases: recorded as effects" '.steps[0].attempts[0].effects | map(.kind) == ["lease", "lease_release"]'
fr replay "$TMP/locker.json" --plugin-dir "$P"
expect_rc "plugin leases: replay without coordination" 0

# ---- divergence -----------------------------------------------------------------------------------
mkdir -p "$TMP/v1" "$TMP/v2"
cp "$FR_BUILDDIR/tests/plugins/v1/.libs/variant.so" "$TMP/v1/"
cp "$FR_BUILDDIR/tests/plugins/v2/.libs/variant.so" "$TMP/v2/"
fr run "$T/variant.yaml" --plugin-dir "$TMP/v1" --input '{"tweak": true}' --trace "$TMP/variant.json"
fr replay "$TMP/variant.json" --plugin-dir "$TMP/v1"
expect_rc "variant 1: replay" 0
fr replay "$TMP/variant.json" --plugin-dir "$TMP/v2"
expect_rc "variant 2: divergence" 1
expect_err "variant 2: plugin change noted" 'plugin "variant" changed'
expect_out "variant 2: at the first step" 'step "first"'
expect_out "variant 2: field" "steps[0].output"
expect_out "variant 2: values" 'replayed: true'
fr replay "$TMP/variant.json" --plugin-dir "$TMP/v2" --json
expect_jq "variant 2 --json" '.identical == false and .divergence.step == "first" and (.notes | length >= 1)'

# A changed manifest: the provider request differs at the step that changed.
sed 's/Continue:/Go on:/' "$T/slow_llm.yaml" > "$TMP/slow_changed.yaml"
# Replay serves the 20 ms provider delays from the trace instead of sleeping (its speed
# is measured by `make bench`, not asserted here).
fr run "$T/slow_llm.yaml" --trace "$TMP/slow.json"
fr replay "$TMP/slow.json"
expect_rc "10 x 20ms provider calls: replay" 0
fr replay "$TMP/slow.json" --manifest "$TMP/slow_changed.yaml"
expect_rc "changed manifest" 1
expect_err "changed manifest noted" "manifest differs"
expect_out "changed manifest: provider request" "].request"
expect_out "changed manifest: step" 'step "s1"'

# Tampered traces.
jq '.steps[1].output.tampered = 1' "$TMP/sequential.json" > "$TMP/t1.json"
fr replay "$TMP/t1.json" --plugin-dir "$P"
expect_rc "tampered output" 1
expect_out "tampered output" 'step "b"'
jq '(.steps[] | select(.step == "a") | .attempts[0].effects) = [{"kind": "random", "value": "1"}]' "$TMP/diamond.json" > "$TMP/t2.json"
fr replay "$TMP/t2.json" --plugin-dir "$P"
expect_rc "tampered effect" 1
expect_out "tampered effect" "effects[0]"
jq '.steps[0].attempts += [.steps[0].attempts[0]]' "$TMP/sequential.json" > "$TMP/t3.json"
fr replay "$TMP/t3.json" --plugin-dir "$P"
expect_rc "extra recorded attempt" 1

# debug
fr debug "$TMP/sequential.json" "$TMP/t1.json"
expect_rc "debug: divergent" 1
expect_out "debug: divergent" "steps[1].output.tampered"
jq '.steps[2].output.x = 2' "$TMP/t1.json" > "$TMP/t4.json"
fr debug "$TMP/sequential.json" "$TMP/t4.json" --all --json
expect_jq "debug --all" '.identical == false and (.divergences | length == 2)'
fr debug "$TMP/sequential.json" "$TMP/sequential.json"
expect_rc "debug: identical" 0

# ---- malformed traces: exit 2, a clear message, never a crash ------------------------------------
head -c 300 "$TMP/sequential.json" > "$TMP/bad1.json"
jq '.version = 9' "$TMP/sequential.json" > "$TMP/bad2.json"
jq '.steps = "many"' "$TMP/sequential.json" > "$TMP/bad3.json"
jq '.steps[0].attempts[0].effects[0] = 7' "$TMP/sequential.json" > "$TMP/bad4.json"
jq '.format = "other"' "$TMP/sequential.json" > "$TMP/bad5.json"
printf '' > "$TMP/bad6.json"
for i in 1 2 3 4 5 6; do
  fr replay "$TMP/bad$i.json"
  expect_rc "malformed trace $i: replay" 2
  expect_err "malformed trace $i: names the file" "bad$i.json"
  fr debug "$TMP/bad$i.json" "$TMP/sequential.json"
  expect_rc "malformed trace $i: debug" 2
done
fr replay "$TMP/bad2.json"
expect_err "wrong version" "version 9 is not supported"
fr replay "$TMP/bad3.json"
expect_err "wrong type" "steps: expected an array"
fr replay "$TMP/nope.json"
expect_rc "missing trace" 2
finish
