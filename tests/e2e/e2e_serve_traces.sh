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
} >"$TMP/providers.yaml"
# Manifests: each declares its provider with a placeholder the server replaces.
mkdir -p "$TMP/m"
for v in openai anthropic gemini; do
  for stream in false true; do
    cat >"$TMP/m/$v-$stream.yaml" <<YAML
router: {namespace: acme, run_timeout: 20s}
providers: [{id: $v, plugin: mock}]
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
