#!/bin/sh
# End-to-end tests of the normalized provider request's ABI 1.2 fields (top_p, seed,
# tool_choice, user, developer role, content parts with images, response_format
# json_schema): `fluxroute run` with the rawcall test agent, which sends a request written
# in the manifest as is, (1) to a provider plugin built against ABI 1.1, which the host
# must refuse to hand the new fields, and (2) to the openai, anthropic and gemini plugins
# against tests/fake_vendor, whose strict shape checks stand for the vendors and whose
# @echo answer returns the wire request, compared here field by field; the vendors'
# answers (text, tool calls, stop reasons, usage) are checked on the way back.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
trap 'stop_serve; stop_fakes; rm -rf "$TMP"' EXIT

P="$FR_BUILDDIR/tests/plugins/.libs"
export FAKE_OPENAI_KEY=sk-fields-1 FAKE_ANTHROPIC_KEY=ak-fields-2 FAKE_GEMINI_KEY=gk-fields-3
start_fake --openai-key "$FAKE_OPENAI_KEY" --anthropic-key "$FAKE_ANTHROPIC_KEY" \
  --gemini-key "$FAKE_GEMINI_KEY" || exit 1

# rawcall_manifest OUT PROVIDER_PLUGIN PROVIDER_CONFIG REQUEST_JSON
rawcall_manifest() {
  cat >"$1" <<YAML
router:
  default_timeout: 10s
providers:
  - id: vendor
    plugin: $2
    config: $3
agents:
  - id: raw
    plugin: rawcall
    provider: vendor
    config: {request: $4}
pipeline:
  - step: raw
YAML
}
# send PLUGIN CONFIG REQUEST: runs the request through PLUGIN, report on stdout
send() {
  rawcall_manifest "$TMP/m.yaml" "$1" "$2" "$3"
  fr run "$TMP/m.yaml" --json --plugin-dir "$P"
}
vendor_cfg() { # VENDOR
  case $1 in
    openai) echo "{model: m-openai, base_url: \"http://127.0.0.1:$FAKE_PORT/v1\", api_key_env: FAKE_OPENAI_KEY}" ;;
    anthropic) echo "{model: m-anthropic, base_url: \"http://127.0.0.1:$FAKE_PORT\", api_key_env: FAKE_ANTHROPIC_KEY}" ;;
    gemini) echo "{model: m-gemini, base_url: \"http://127.0.0.1:$FAKE_PORT\", api_key_env: FAKE_GEMINI_KEY}" ;;
  esac
}
WIRE='.steps[0].output.text | fromjson'
TOOLS='"tools":[{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]'
PNG='data:image/png;base64,iVBORw0KGgo='

# ---- the host refuses ABI 1.2 fields to a provider plugin of ABI 1.1 ---------------------
send old_provider '{}' '{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}'
expect_rc "ABI 1.1 provider, ABI 1.0 fields" 0
expect_jq "ABI 1.1 provider, ABI 1.0 fields" '.steps[0].output.text == "old provider answered"'
for case in \
  'seed|{"messages":[{"role":"user","content":"hi"}],"seed":7}' \
  'top_p|{"messages":[{"role":"user","content":"hi"}],"top_p":0.5}' \
  'user|{"messages":[{"role":"user","content":"hi"}],"user":"u-1"}' \
  "tool_choice|{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$TOOLS,\"tool_choice\":\"auto\"}" \
  'messages[1].role|{"messages":[{"role":"user","content":"hi"},{"role":"developer","content":"be nice"}]}' \
  'messages[0].content|{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}' \
  'response_format|{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}'; do
  field=${case%%|*}
  send old_provider '{}' "${case#*|}"
  expect_rc "ABI 1.1 provider refused $field" 1
  expect_jq "ABI 1.1 provider refused $field" '.steps[0].error.class == "bad_request"'
  expect_jq "ABI 1.1 provider refused $field" \
    ".steps[0].error.message | startswith(\"provider \\\"vendor\\\": unsupported field '$field': provider plugin \\\"old_provider\\\" is built against ABI 1.1\")"
  expect_jq "ABI 1.1 provider refused $field: one attempt" '.steps[0].attempts | length == 1'
done
# json_object was there before 1.2: it still reaches the plugin.
send old_provider '{}' '{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}'
expect_rc "ABI 1.1 provider, json_object" 0

# ---- every vendor: the new fields on the wire, field by field ------------------------------
REQ_COMMON='"system":"Be brief.","max_tokens":50,"top_p":0.25,'"$TOOLS"',"tool_choice":{"name":"get_weather"}'
USER_PARTS='{"role":"user","content":[{"type":"text","text":"What is in it? @echo"},{"type":"image_url","image_url":{"url":"'"$PNG"'"}}]}'
DEV='{"role":"developer","content":[{"type":"text","text":"Answer in French."}]}'

# openai: everything goes through as OpenAI has it.
send openai "$(vendor_cfg openai)" \
  "{$REQ_COMMON,\"seed\":7,\"user\":\"u-42\",\"messages\":[$DEV,{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in it? @echo\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"$PNG\",\"detail\":\"low\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}}]}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\",\"schema\":{\"type\":\"object\"},\"strict\":true}}}"
expect_rc "openai wire" 0
expect_jq "openai wire: system, developer" "$WIRE | .messages[0] == {\"role\":\"system\",\"content\":\"Be brief.\"} and .messages[1] == {\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Answer in French.\"}]}"
expect_jq "openai wire: image parts" "$WIRE | .messages[2].content[1:] == [{\"type\":\"image_url\",\"image_url\":{\"url\":\"$PNG\",\"detail\":\"low\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}}]"
expect_jq "openai wire: top_p, seed, user" "$WIRE | .top_p == 0.25 and .seed == 7 and .user == \"u-42\" and .max_tokens == 50"
expect_jq "openai wire: tool_choice" "$WIRE | .tool_choice == {\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}"
expect_jq "openai wire: tools" "$WIRE | .tools[0].type == \"function\" and .tools[0].function.name == \"get_weather\""
expect_jq "openai wire: json_schema" "$WIRE | .response_format == {\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\",\"schema\":{\"type\":\"object\"},\"strict\":true}}"
expect_jq "openai answer: usage, stop" '.steps[0].output.finish_reason == "stop" and (.steps[0].output.usage.input_tokens > 0)'

# anthropic: developer joins system, images as blocks, tool_choice typed, user as metadata.
send anthropic "$(vendor_cfg anthropic)" \
  "{$REQ_COMMON,\"user\":\"u-42\",\"messages\":[$DEV,{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in it? @echo\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"$PNG\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\",\"detail\":\"auto\"}}]}]}"
expect_rc "anthropic wire" 0
expect_jq "anthropic wire: system" "$WIRE | .system == \"Be brief.\\n\\nAnswer in French.\""
expect_jq "anthropic wire: blocks" "$WIRE | .messages == [{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in it? @echo\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]}]"
expect_jq "anthropic wire: top_p, metadata" "$WIRE | .top_p == 0.25 and .metadata == {\"user_id\":\"u-42\"} and .max_tokens == 50"
expect_jq "anthropic wire: tool_choice" "$WIRE | .tool_choice == {\"type\":\"tool\",\"name\":\"get_weather\"}"
expect_jq "anthropic wire: tools" "$WIRE | .tools[0].name == \"get_weather\" and .tools[0].input_schema.type == \"object\""
expect_jq "anthropic wire: nothing else" "$WIRE | keys == [\"max_tokens\",\"messages\",\"metadata\",\"model\",\"system\",\"tool_choice\",\"tools\",\"top_p\"]"

# gemini: developer joins systemInstruction, inlineData and fileData, generationConfig, toolConfig.
send gemini "$(vendor_cfg gemini)" \
  "{$REQ_COMMON,\"seed\":7,\"messages\":[$DEV,{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in it? @echo\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"$PNG\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://generativelanguage.googleapis.com/v1beta/files/abc\"}}]}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\",\"schema\":{\"type\":\"object\"}}}}"
expect_rc "gemini wire" 0
expect_jq "gemini wire: systemInstruction" "$WIRE | .systemInstruction == {\"parts\":[{\"text\":\"Be brief.\"},{\"text\":\"Answer in French.\"}]}"
expect_jq "gemini wire: parts" "$WIRE | .contents == [{\"role\":\"user\",\"parts\":[{\"text\":\"What is in it? @echo\"},{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},{\"fileData\":{\"fileUri\":\"https://generativelanguage.googleapis.com/v1beta/files/abc\"}}]}]"
expect_jq "gemini wire: generationConfig" "$WIRE | .generationConfig == {\"maxOutputTokens\":50,\"topP\":0.25,\"seed\":7,\"responseMimeType\":\"application/json\",\"responseJsonSchema\":{\"type\":\"object\"}}"
expect_jq "gemini wire: toolConfig" "$WIRE | .toolConfig == {\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"get_weather\"]}}"
expect_jq "gemini answer: model version" '.steps[0].output.model == "m-gemini-001"'

# tool_choice's other values, per vendor
for pair in 'auto|"auto"|{"type":"auto"}|{"functionCallingConfig":{"mode":"AUTO"}}' \
  'none|"none"|{"type":"none"}|{"functionCallingConfig":{"mode":"NONE"}}' \
  'required|"required"|{"type":"any"}|{"functionCallingConfig":{"mode":"ANY"}}'; do
  IFS='|' read -r name oa an ge <<EOT
$pair
EOT
  for v in openai anthropic gemini; do
    send $v "$(vendor_cfg $v)" "{$TOOLS,\"tool_choice\":\"$name\",\"messages\":[{\"role\":\"user\",\"content\":\"pick @echo\"}]}"
    expect_rc "$v tool_choice $name" 0
    case $v in
      openai) expect_jq "$v tool_choice $name" "$WIRE | .tool_choice == $oa" ;;
      anthropic) expect_jq "$v tool_choice $name" "$WIRE | .tool_choice == $an" ;;
      gemini) expect_jq "$v tool_choice $name" "$WIRE | .toolConfig == $ge" ;;
    esac
  done
done

# ---- fields a vendor cannot take: refused before anything is sent --------------------------
fake_reset "$FAKE_PORT"
for case in \
  "anthropic|seed|{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"seed\":1}" \
  "anthropic|response_format|{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_object\"}}" \
  "anthropic|messages[0].content[1].image_url|{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/bmp;base64,Qk0=\"}}]}]}" \
  "anthropic|messages[0].content[0].image_url.detail|{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"$PNG\",\"detail\":\"high\"}}]}]}" \
  "gemini|user|{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"user\":\"u-1\"}" \
  "gemini|messages[0].content[1].image_url|{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}}]}]}"; do
  v=${case%%|*}
  rest=${case#*|}
  field=${rest%%|*}
  send $v "$(vendor_cfg $v)" "${rest#*|}"
  expect_rc "$v refuses $field" 1
  expect_jq "$v refuses $field" '.steps[0].error.class == "bad_request"'
  expect_jq "$v refuses $field" ".steps[0].error.message | startswith(\"provider \\\"vendor\\\": unsupported field '$field': \")"
done
fake_stats "$FAKE_PORT" >"$TMP/out"
expect_jq "refused requests reached no vendor" '.requests == 0'

# ---- the fake vendor's own strictness: a shape the vendor refuses is a 400 -----------------
# (what a plugin must never send; checked with curl so the plugins' checks do not mask it)
post() { # PATH HEADER BODY
  curl -sS --max-time 10 -o "$TMP/out" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H "$2" -H 'anthropic-version: 2023-06-01' -d "$3" "http://127.0.0.1:$FAKE_PORT$1"
}
code=$(post /v1/messages "x-api-key: $FAKE_ANTHROPIC_KEY" '{"model":"m","max_tokens":5,"seed":1,"messages":[{"role":"user","content":"hi"}]}')
check "fake anthropic refuses seed" test "$code" = 400
expect_jq "fake anthropic refuses seed" '.error.message | contains("seed: Extra inputs are not permitted")'
code=$(post /v1/messages "x-api-key: $FAKE_ANTHROPIC_KEY" '{"model":"m","max_tokens":5,"tool_choice":{"type":"tool"},"tools":[{"name":"f","input_schema":{}}],"messages":[{"role":"user","content":"hi"}]}')
check "fake anthropic refuses tool_choice tool without name" test "$code" = 400
code=$(post /v1/chat/completions "Authorization: Bearer $FAKE_OPENAI_KEY" '{"model":"m","tool_choice":"auto","messages":[{"role":"user","content":"hi"}]}')
check "fake openai refuses tool_choice without tools" test "$code" = 400
code=$(post /v1/chat/completions "Authorization: Bearer $FAKE_OPENAI_KEY" '{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}]}')
check "fake openai refuses an image in a system message" test "$code" = 400
code=$(post "/v1beta/models/m:generateContent" "x-goog-api-key: $FAKE_GEMINI_KEY" '{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"user":"u"}')
check "fake gemini refuses an unknown field" test "$code" = 400
code=$(post "/v1beta/models/m:generateContent" "x-goog-api-key: $FAKE_GEMINI_KEY" '{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO","allowedFunctionNames":["f"]}}}')
check "fake gemini refuses allowedFunctionNames outside mode ANY" test "$code" = 400

# ---- answers back: tool calls, stop reasons and usage per vendor ---------------------------
for v in openai anthropic gemini; do
  send $v "$(vendor_cfg $v)" "{$TOOLS,\"tool_choice\":\"required\",\"messages\":[{\"role\":\"developer\",\"content\":\"Use tools.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris? @tool\"}]}]}"
  expect_rc "$v tool answer" 0
  expect_jq "$v tool answer" '.steps[0].output.tool_calls | length == 1'
  expect_jq "$v tool answer" '.steps[0].output.tool_calls[0] | .name == "get_weather" and .arguments == {"city": "Paris"} and (.id | length > 0)'
  expect_jq "$v tool answer" '.steps[0].output.finish_reason == "tool_calls" and .steps[0].output.usage.output_tokens == 5'
  # the second turn: the tool call and its result (as content parts) go back
  send $v "$(vendor_cfg $v)" "{$TOOLS,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"}],\"tool_calls\":[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":\"sunny\"}]}]}"
  expect_rc "$v tool result" 0
  expect_jq "$v tool result" '.steps[0].output.text == "tool result: sunny" and .steps[0].output.finish_reason == "stop"'
done

# ---- through the gateway: a refused field is a 400 whose param names it --------------------
KEY=fields-key-0123456789
mkdir -p "$TMP/gm"
printf 'keys:\n  - {id: k, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' "$(sha "$KEY")" >"$TMP/gk.yaml"
printf 'providers:\n  - {id: claude, plugin: anthropic, config: %s}\n  - {id: gem, plugin: gemini, config: %s}\n' \
  "$(vendor_cfg anthropic)" "$(vendor_cfg gemini)" >"$TMP/gp.yaml"
printf 'routes:\n  - {name: claude, targets: [{provider: claude}]}\n  - {name: gem, targets: [{provider: gem}]}\n' >"$TMP/gr.yaml"
if start_serve --manifest-dir "$TMP/gm" --keys "$TMP/gk.yaml" --providers "$TMP/gp.yaml" --routes "$TMP/gr.yaml"; then
  for case in 'claude|seed|"seed":3' 'gem|user|"user":"u-1"' \
    "gem|messages[0].content[1].image_url|\"x\":0"; do
    route=${case%%|*}
    rest=${case#*|}
    field=${rest%%|*}
    extra=${rest#*|}
    content='"hi"'
    if [ "$extra" = '"x":0' ]; then
      extra='"max_tokens":5'
      content='[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]'
    fi
    req POST /v1/chat/completions "{\"model\":\"$route\",$extra,\"messages\":[{\"role\":\"user\",\"content\":$content}]}" \
      -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json'
    expect_code "gateway $route refuses $field" 400
    expect_jq "gateway $route refuses $field" ".error.param == \"$field\" and .error.type == \"invalid_request_error\""
    expect_jq "gateway $route refuses $field" ".error.message | contains(\"unsupported field '$field': \")"
  done
else
  not_ok "serve with the gateway routes started"
fi

finish
