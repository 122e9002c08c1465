#!/bin/sh
# A trace downloaded from serve replays with `fluxroute replay` alone: it records the
# providers the run used (the server's, which replace the manifest's), without key values.
# For each provider plugin (openai, anthropic, gemini against tests/fake_vendor), streaming
# and not: run through serve with a trace, download it, replay it offline, identical.
# Version-1 traces (no providers) still replay.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
trap 'stop_serve; stop_fakes; rm -rf "$TMP"' EXIT

export FAKE_OPENAI_KEY=sk-trace-123-secret FAKE_ANTHROPIC_KEY=ak-trace-456-secret \
  FAKE_GEMINI_KEY=gk-trace-789-secret
start_fake --openai-key "$FAKE_OPENAI_KEY" --anthropic-key "$FAKE_ANTHROPIC_KEY" \
  --gemini-key "$FAKE_GEMINI_KEY" || exit 1

# The server's providers: one per vendor, pointing at the fake vendor.
{
  echo "providers:"
  for v in openai anthropic gemini; do
    url="http://127.0.0.1:$FAKE_PORT"
    [ $v = openai ] && url="$url/v1"
    key=$(echo "FAKE_${v}_KEY" | tr a-z A-Z)
    echo "  - {id: $v, plugin: $v, config: {model: $v-model, base_url: \"$url\", api_key_env: $key}}"
  done
  echo "  - {id: plain, plugin: mock}"
} >"$TMP/providers.yaml"
# Manifests: each names the server's provider without declaring it.
mkdir -p "$TMP/m"
for v in openai anthropic gemini; do
  for stream in false true; do
    cat >"$TMP/m/$v-$stream.yaml" <<YAML
router: {namespace: acme, run_timeout: 20s}
agents:
  - {id: ask, plugin: llm, provider: $v, config: {system: "You are a test.", prompt: "{{input.text}}", stream: $stream}}
pipeline: [{step: ask}]
YAML
  done
done
KEY=trace-test-key-0123456789
printf 'keys:\n  - {id: op, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(sha "$KEY")" >"$TMP/keys.yaml"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --providers "$TMP/providers.yaml" || exit 1
OP="Authorization: Bearer $KEY"

for v in openai anthropic gemini; do
  for stream in false true; do
    name="$v stream=$stream"
    req POST /v1/run "{\"manifest\": \"$v-$stream.yaml\", \"input\": {\"text\": \"hello $v\"}, \"trace\": true}" -H "$OP"
    expect_code "$name: run" 200
    expect_jq "$name: the server's provider answered" ".steps[0].output.text == \"fake-$v heard: hello $v\""
    rid=$(jq -r .run_id "$TMP/out")
    req GET "/v1/runs/$rid/trace" '' -H "$OP"
    expect_code "$name: trace" 200
    cp "$TMP/out" "$TMP/$v-$stream.trace.json"
    expect_jq "$name: trace version 2" '.version == 2'
    expect_jq "$name: the trace records the server's provider" \
      ".providers == [{\"id\": \"$v\", \"plugin\": \"$v\", \"config\": {\"model\": \"$v-model\", \"base_url\": .providers[0].config.base_url, \"api_key_env\": \"$(echo "FAKE_${v}_KEY" | tr a-z A-Z)\"}}] and (.providers[0].config.base_url | startswith(\"http://127.0.0.1:$FAKE_PORT\"))"
    check "$name: no key value in the trace" sh -c '! grep -q -e "$1" -e "$2" -e "$3" "$4"' sh \
      "$FAKE_OPENAI_KEY" "$FAKE_ANTHROPIC_KEY" "$FAKE_GEMINI_KEY" "$TMP/$v-$stream.trace.json"
    # Offline: no vendor, no keys, the trace alone.
    env -u FAKE_OPENAI_KEY -u FAKE_ANTHROPIC_KEY -u FAKE_GEMINI_KEY \
      "$FLUXROUTE" replay "$TMP/$v-$stream.trace.json" --json >"$TMP/out" 2>"$TMP/err" </dev/null
    rc=$?
    if [ "$rc" = 0 ]; then ok "$name: replays identical (exit 0)"; else not_ok "$name: replays identical (exit 0)" "exit $rc: $(cat "$TMP/err") $(head -c 600 "$TMP/out")"; fi
    expect_jq "$name: replay report" '.identical == true and .steps == 1 and .effects >= 1'
  done
done
# ---- the provider rules: use the server's undeclared; declare it only alike ----------------
oa_url="http://127.0.0.1:$FAKE_PORT/v1"
run_inline() { # NAME PROVIDERS-YAML (a manifest with one llm step on provider openai)
  body=$(jq -cn --arg y "router: {namespace: acme}
$2
agents: [{id: ask, plugin: llm, provider: openai, config: {prompt: \"{{input.text}}\"}}]
pipeline: [{step: ask}]
" '{manifest_yaml: $y, input: {text: "rules"}}')
  req POST /v1/run "$body" -H "$OP"
}
run_inline "undeclared" ""
expect_code "a manifest uses the server's provider without declaring it" 200
expect_jq "undeclared: the server's provider answered" '.steps[0].output.text == "fake-openai heard: rules"'
run_inline "same plugin, other model" "providers: [{id: openai, plugin: openai, config: {model: other, base_url: \"$oa_url\", api_key_env: FAKE_OPENAI_KEY}}]"
expect_code "declared with another config" 400
expect_jq "declared with another config: provider_conflict" '.error.code == "provider_conflict" and (.error.message | test("provider \"openai\": the server defines it with another config [(]option \"model\" differs"))'
run_inline "other plugin" "providers: [{id: openai, plugin: mock}]"
expect_code "declared with another plugin" 400
expect_jq "declared with another plugin: provider_conflict names both" '.error.code == "provider_conflict" and (.error.message | test("the server defines it, with plugin \"openai\"; this manifest declares plugin \"mock\""))'
# Alike once defaults are filled: the server's "plain" mock has no config; a manifest may
# declare it with the defaults spelt out (model mock-1, delay 0 written as 0ms).
body=$(jq -cn '{manifest_yaml: "router: {namespace: acme}\nproviders: [{id: plain, plugin: mock, config: {model: mock-1, delay: 0ms}}]\nagents: [{id: ask, plugin: llm, provider: plain, config: {prompt: hi}}]\npipeline: [{step: ask}]\n"}')
req POST /v1/run "$body" -H "$OP"
expect_code "declared alike, defaults spelt out" 200
body=$(jq -cn '{manifest_yaml: "router: {namespace: acme}\nproviders: [{id: plain, plugin: mock, config: {delay: 1ms}}]\nagents: [{id: ask, plugin: llm, provider: plain, config: {prompt: hi}}]\npipeline: [{step: ask}]\n"}')
req POST /v1/run "$body" -H "$OP"
expect_jq "a default changed is a conflict" '.error.code == "provider_conflict" and (.error.message | test("option \"delay\" differs"))'
run_inline "unknown" "providers: [{id: elsewhere, plugin: mock}]"
expect_code "declaring a provider the server lacks" 400
expect_jq "declaring a provider the server lacks: unknown_provider" '.error.code == "unknown_provider"'
body=$(jq -cn '{manifest_yaml: "router: {namespace: acme}\nagents: [{id: ask, plugin: llm, provider: nowhere}]\npipeline: [{step: ask}]\n"}')
req POST /v1/validate "$body" -H "$OP"
expect_jq "a provider nobody defines" '.valid == false and ([.errors[].message] | any(test("unknown provider \"nowhere\" [(]neither the manifest nor the server defines it[)]")))'
body=$(jq -cn '{manifest_yaml: "router: {namespace: acme}\nagents: [{id: ask, plugin: llm, provider: gemini, config: {prompt: hi}}]\npipeline: [{step: ask}]\n"}')
req POST /v1/validate "$body" -H "$OP"
expect_jq "validate: the server's provider undeclared is valid" '.valid == true'

stop_serve
stop_fakes

# A version-1 trace (no providers) of a CLI run still replays.
fr run "$FR_SRCDIR/manifests/hello.yaml" --trace "$TMP/hello.json"
expect_rc "hello run" 0
jq '.version = 1 | del(.providers)' "$TMP/hello.json" >"$TMP/hello-v1.json"
fr replay "$TMP/hello-v1.json"
expect_rc "a version-1 trace replays" 0
# A version-2 trace must carry its providers; a bad one is named.
jq 'del(.providers)' "$TMP/hello.json" >"$TMP/noprov.json"
fr replay "$TMP/noprov.json"
expect_rc "version 2 without providers" 2
expect_err "version 2 without providers" "providers: missing"
jq '.providers[0].plugin = 7' "$TMP/hello.json" >"$TMP/badprov.json"
fr replay "$TMP/badprov.json"
expect_rc "a provider without a plugin name" 2
expect_err "a provider without a plugin name" "providers[0].plugin: expected a string"
jq '.version = 3' "$TMP/hello.json" >"$TMP/v3.json"
fr replay "$TMP/v3.json"
expect_rc "version 3" 2
expect_err "version 3" "trace version 3 is not supported (this fluxroute reads versions 1 to 2)"
finish
