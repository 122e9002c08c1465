#!/bin/sh
# End-to-end tests of the provider plugins (openai, anthropic, gemini): `fluxroute run`
# with llm steps against tests/fake_vendor on 127.0.0.1.  Success, every error class,
# tool calls, streaming (and cut streams), missing keys, keys never printed, TLS with a
# test CA, and one reused connection for a 10-step chain.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"

export FAKE_OPENAI_KEY=sk-test-123-secret FAKE_ANTHROPIC_KEY=ak-test-456-secret \
  FAKE_GEMINI_KEY=gk-test-789-secret
KEYS="$FAKE_OPENAI_KEY $FAKE_ANTHROPIC_KEY $FAKE_GEMINI_KEY"
start_fake --openai-key "$FAKE_OPENAI_KEY" --anthropic-key "$FAKE_ANTHROPIC_KEY" \
  --gemini-key "$FAKE_GEMINI_KEY" || exit 1
PORT=$FAKE_PORT

base_url() { # VENDOR [SCHEME [PORT]]
  local u="${2:-http}://127.0.0.1:${3:-$PORT}"
  if [ "$1" = openai ]; then echo "$u/v1"; else echo "$u"; fi
}
key_env() { # VENDOR
  case $1 in openai) echo FAKE_OPENAI_KEY ;; anthropic) echo FAKE_ANTHROPIC_KEY ;; gemini) echo FAKE_GEMINI_KEY ;; esac
}
TOOLS=', tools: [{name: get_weather, description: "Current weather", parameters: {type: object, properties: {city: {type: string}}, required: [city]}}]'

for v in openai anthropic gemini; do
  M="$TMP/$v.yaml"
  MS="$TMP/$v-stream.yaml"
  manifest "$M" "$v" "$v-model" "$(base_url $v)" "$(key_env $v)" false
  manifest "$MS" "$v" "$v-model" "$(base_url $v)" "$(key_env $v)" true

  # ---- success ---------------------------------------------------------------------
  ask "$M" "hello from the test suite"
  expect_rc "$v ok" 0
  expect_jq "$v ok" ".steps[0].output.text == \"fake-$v heard: hello from the test suite\""
  expect_jq "$v ok" '.steps[0].output.usage == {"input_tokens": 8, "output_tokens": 7}'
  expect_jq "$v ok" '.steps[0].output.provider == "vendor" and .steps[0].output.finish_reason == "stop"'
  expect_jq "$v ok" '.steps[0].output.tool_calls == []'
  if [ $v = gemini ]; then want_model=gemini-model-001; else want_model=$v-model; fi
  expect_jq "$v ok" ".steps[0].output.model == \"$want_model\""

  # ---- HTTP errors -> classes, with the vendor's message ------------------------------
  for pair in 400:bad_request 401:auth 403:auth 408:timeout 429:rate_limited 500:unavailable \
    502:unavailable 504:unavailable 503:overloaded 529:overloaded; do
    code=${pair%%:*}
    class=${pair#*:}
    ask "$M" "fail please @status=$code @retry_after=0"
    expect_rc "$v HTTP $code" 1
    expect_jq "$v HTTP $code" ".steps[0].error.class == \"$class\""
    expect_jq "$v HTTP $code" ".steps[0].error.message | contains(\"$v: HTTP $code: fake $v error: scripted HTTP $code\")"
  done

  ask "$M" "a very long prompt @context"
  expect_jq "$v context" '.steps[0].error.class == "context_window"'
  case $v in
    openai) expect_jq "$v context" '.steps[0].error.message | contains("maximum context length is 8192 tokens")' ;;
    anthropic) expect_jq "$v context" '.steps[0].error.message | contains("prompt is too long")' ;;
    gemini) expect_jq "$v context" '.steps[0].error.message | contains("exceeds the maximum number of tokens")' ;;
  esac
  ask "$M" "something bad @policy"
  expect_jq "$v policy" '.steps[0].error.class == "content_policy"'
  case $v in
    openai) expect_jq "$v policy" '.steps[0].error.message | contains("rejected as a result of our safety system")' ;;
    anthropic) expect_jq "$v policy" '.steps[0].error.message | contains("content filtering policy")' ;;
    gemini) expect_jq "$v policy" '.steps[0].error.message | contains("blockReason SAFETY")' ;;
  esac
  for marker in malformed truncated missing; do
    ask "$M" "hi @$marker"
    expect_rc "$v @$marker" 1
    expect_jq "$v @$marker" '.steps[0].error.class == "bad_response"'
    expect_jq "$v @$marker" ".steps[0].error.message | contains(\"$v: \")"
  done

  # ---- transport: timeout, network ------------------------------------------------
  manifest "$TMP/$v-timeout.yaml" "$v" m "$(base_url $v)" "$(key_env $v)" false ", timeout: 300ms"
  ask "$TMP/$v-timeout.yaml" "take your time @slow=3000"
  expect_jq "$v timeout" '.steps[0].error.class == "timeout"'
  expect_jq "$v timeout" '.steps[0].duration_us < 2500000'
  manifest "$TMP/$v-down.yaml" "$v" m "$(base_url $v http 1)" "$(key_env $v)" false
  ask "$TMP/$v-down.yaml" "anyone there"
  expect_jq "$v connection refused" '.steps[0].error.class == "network"'

  # ---- wrong key: auth; the key is never shown --------------------------------------
  manifest "$TMP/$v-wrongkey.yaml" "$v" m "$(base_url $v)" WRONG_KEY false
  WRONG_KEY=wrong-key-0000-secret ask "$TMP/$v-wrongkey.yaml" "hi"
  expect_jq "$v wrong key" '.steps[0].error.class == "auth"'
  # The fake openai echoes the refused key in its message, as a test of the redaction.
  [ $v = openai ] && expect_jq "$v wrong key" '.steps[0].error.message | contains("Incorrect API key provided: [REDACTED].")'
  if grep -q wrong-key-0000-secret "$TMP/out" "$TMP/err"; then
    not_ok "$v wrong key: never printed"
  else
    ok "$v wrong key: never printed"
  fi

  # ---- tool calls ------------------------------------------------------------------
  manifest "$TMP/$v-tools.yaml" "$v" "$v-model" "$(base_url $v)" "$(key_env $v)" false "" "$TOOLS"
  manifest "$TMP/$v-tools-stream.yaml" "$v" "$v-model" "$(base_url $v)" "$(key_env $v)" true "" "$TOOLS"
  for tm in "$TMP/$v-tools.yaml" "$TMP/$v-tools-stream.yaml"; do
    name="$v tool call ($(basename "$tm" .yaml))"
    ask "$tm" "weather in Paris? @tool"
    expect_rc "$name" 0
    expect_jq "$name" '.steps[0].output.tool_calls | length == 1'
    expect_jq "$name" '.steps[0].output.tool_calls[0] | .name == "get_weather" and .arguments == {"city": "Paris"}'
    expect_jq "$name" '.steps[0].output.tool_calls[0].id | type == "string" and length > 0'
    expect_jq "$name" '.steps[0].output.finish_reason == "tool_calls"'
  done

  # ---- streaming -------------------------------------------------------------------
  ask "$MS" "hello from the test suite"
  expect_rc "$v stream" 0
  expect_jq "$v stream" ".steps[0].output.text == \"fake-$v heard: hello from the test suite\""
  expect_jq "$v stream" '.steps[0].output.usage == {"input_tokens": 8, "output_tokens": 7}'
  expect_jq "$v stream" '.steps[0].output.finish_reason == "stop"'
  expect_jq "$v ok: usage reported, no note" '[.steps[0].attempts[] | has("notes")] == [false]'

  # ---- usage: none reported is null (unknown) with a note; 0 reported stays 0 -------------
  NOTE='provider \"vendor\" reported no token usage: its tokens are unknown (usage null), not 0'
  for mm in "$M" "$MS"; do
    name="$v no usage ($(basename "$mm" .yaml))"
    ask "$mm" "count me @no_usage" --trace "$TMP/$v-nousage.json"
    expect_rc "$name" 0
    expect_jq "$name: text" ".steps[0].output.text == \"fake-$v heard: count me @no_usage\""
    expect_jq "$name: usage null" '.steps[0].output | has("usage") and .usage == null'
    expect_jq "$name: the attempt's note" ".steps[0].attempts[0].notes == [\"$NOTE\"]"
    frl replay "$TMP/$v-nousage.json" --json
    expect_rc "$name: replay" 0
    expect_jq "$name: replays identical" '.identical == true'
    ask "$mm" "count me @zero_usage"
    expect_jq "$v zero usage ($(basename "$mm" .yaml)): 0 stays 0, no note" \
      '.steps[0].output.usage == {"input_tokens": 0, "output_tokens": 0} and (.steps[0].attempts[0] | has("notes") | not)'
  done
  ask "$MS" "hello from the test suite @stream_cut"
  expect_rc "$v stream cut" 1
  expect_jq "$v stream cut" '.steps[0].error.class == "stream_truncated"'
  expect_jq "$v stream cut" ".steps[0].error.message | test(\"$v: stream cut after [0-9]+ chunks\")"
  # `run --stream` prints the text as it arrives; a retry after a cut stream says so.
  manifest "$TMP/$v-stream-retry.yaml" "$v" "$v-model" "$(base_url $v)" "$(key_env $v)" true
  sed -i 's/^  - id: ask$/  - id: ask\n    retry: {max_attempts: 2, base_delay: 1ms}/' "$TMP/$v-stream-retry.yaml"
  frl run "$TMP/$v-stream-retry.yaml" --stream --input '{"text": "cut me short @stream_cut"}'
  expect_rc "$v --stream, cut twice" 1
  expect_out "$v --stream prints the text" "fake-$v heard"
  expect_out "$v --stream: the retry says it starts over" "stream_truncated after"
  ask "$MS" "stream me an error @status=529"
  expect_jq "$v stream error" '.steps[0].error.class == "overloaded"'

  # ---- missing key: a configuration error naming the variable ----------------------
  manifest "$TMP/$v-nokey.yaml" "$v" m "$(base_url $v)" FR_TEST_UNSET_KEY false
  frl validate "$TMP/$v-nokey.yaml"
  expect_rc "$v missing key (validate)" 2
  expect_err "$v missing key (validate)" "$v: environment variable FR_TEST_UNSET_KEY is not set (api_key_env)"
  frl run "$TMP/$v-nokey.yaml"
  expect_rc "$v missing key (run)" 2
  expect_err "$v missing key (run)" "FR_TEST_UNSET_KEY"
done

# ---- anthropic: Authorization: Bearer when configured ---------------------------------
manifest "$TMP/bearer.yaml" anthropic m "$(base_url anthropic)" FAKE_ANTHROPIC_KEY false ", auth: bearer"
ask "$TMP/bearer.yaml" "bearer please"
expect_jq "anthropic auth: bearer" '.steps[0].output.text == "fake-anthropic heard: bearer please"'
manifest "$TMP/badauth.yaml" anthropic m "$(base_url anthropic)" FAKE_ANTHROPIC_KEY false ", auth: basic"
frl validate "$TMP/badauth.yaml"
expect_rc "anthropic auth: basic" 2
expect_err "anthropic auth: basic" "option auth must be x-api-key or bearer"

# ---- one connection for a 10-step chain, whichever worker runs each step --------------
sed "s|127.0.0.1:18080|127.0.0.1:$PORT|" "$FR_SRCDIR/manifests/bench/ai_chain10.yaml" >"$TMP/chain10.yaml"
fake_reset "$PORT"
frl run "$TMP/chain10.yaml" --json
expect_rc "chain10" 0
expect_jq "chain10" '[.steps[] | select(.status == "succeeded")] | length == 10'
fake_stats "$PORT" >"$TMP/out"
expect_jq "chain10 reuses one connection" '.requests == 10 and .vendor_connections == 1'

# ---- TLS with a test CA -------------------------------------------------------------
if command -v certtool >/dev/null 2>&1; then
  (
    cd "$TMP" || exit 1
    printf 'cn = "FluxRoute test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
    printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n' >srv.tmpl
    certtool --generate-privkey --key-type=ecdsa --outfile ca.key &&
      certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile srv.key &&
      certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem
  ) >"$TMP/certtool.log" 2>&1 || { cat "$TMP/certtool.log"; not_ok "certtool made the test CA"; }
  start_fake --openai-key "$FAKE_OPENAI_KEY" --cert "$TMP/srv.pem" --key "$TMP/srv.key" || exit 1
  manifest "$TMP/tls.yaml" openai m "$(base_url openai https "$FAKE_PORT")" FAKE_OPENAI_KEY false ", ca_file: \"$TMP/ca.pem\""
  ask "$TMP/tls.yaml" "over TLS"
  expect_rc "TLS with ca_file" 0
  expect_jq "TLS with ca_file" '.steps[0].output.text == "fake-openai heard: over TLS"'
  manifest "$TMP/tls-noca.yaml" openai m "$(base_url openai https "$FAKE_PORT")" FAKE_OPENAI_KEY false
  ask "$TMP/tls-noca.yaml" "over TLS"
  expect_rc "TLS without ca_file" 1
  expect_jq "TLS without ca_file" '.steps[0].error.class == "network"'
else
  not_ok "certtool (gnutls-bin) is installed"
fi

# ---- no key ever printed ---------------------------------------------------------------
for k in $KEYS; do
  if grep -qF -- "$k" "$TMP/all.log"; then not_ok "key ${k%%-*}-... never printed"; else ok "key ${k%%-*}-... never printed"; fi
done
[ -s "$TMP/all.log" ] && ok "outputs were collected" || not_ok "outputs were collected"

finish
