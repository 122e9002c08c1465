#!/bin/sh
# End-to-end tests of incremental streaming (issue #5): `fluxroute run --stream` prints
# each token while the vendor is still sending (tests/fake_vendor's @stream_gap), a
# connection broken mid-stream (@stream_drop) is a stream_truncated error that a retry
# restarts, recorded streamed runs replay identically offline, and an isolated llm agent
# streams too.  All three provider plugins.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"

export FAKE_STREAM_KEY=sk-stream-test-secret
start_fake --openai-key "$FAKE_STREAM_KEY" --anthropic-key "$FAKE_STREAM_KEY" \
  --gemini-key "$FAKE_STREAM_KEY" || exit 1
PORT=$FAKE_PORT

base_url() { # VENDOR
  if [ "$1" = openai ]; then echo "http://127.0.0.1:$PORT/v1"; else echo "http://127.0.0.1:$PORT"; fi
}

# watch_stream MANIFEST TEXT: runs `run --stream` in the background and polls its stdout.
# Sets EARLY=1 when the answer's first word was on stdout while the run was still going
# and its last word ("@stream_gap=...", the prompt's marker echoed last) was not, and
# rc to the run's exit code; stdout ends up in $TMP/out.
watch_stream() {
  : >"$TMP/out"
  "$FLUXROUTE" run "$1" --stream --input "$(jq -cn --arg t "$2" '{text: $t}')" \
    >"$TMP/out" 2>"$TMP/err" </dev/null &
  local pid=$! i=0
  EARLY=0
  while [ $i -lt 1500 ]; do
    if grep -q "heard" "$TMP/out"; then
      if kill -0 "$pid" 2>/dev/null && ! grep -q "stream_gap" "$TMP/out"; then EARLY=1; fi
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
    i=$((i + 1))
  done
  rc=0
  wait "$pid" || rc=$?
}

for v in openai anthropic gemini; do
  MS="$TMP/$v-stream.yaml"
  manifest "$MS" "$v" "$v-model" "$(base_url $v)" FAKE_STREAM_KEY true

  # ---- tokens reach stdout as they arrive ----------------------------------------------
  # Six words 400 ms apart: the first ones must be printed seconds before the last.
  watch_stream "$MS" "one two three @stream_gap=400"
  expect_rc "$v --stream with gaps" 0
  expect_out "$v --stream with gaps: the whole answer" "fake-$v heard: one two three @stream_gap=400"
  if [ "$EARLY" = 1 ]; then
    ok "$v --stream: the first tokens are printed before the vendor finished"
  else
    not_ok "$v --stream: the first tokens are printed before the vendor finished"
  fi

  # ---- a connection broken mid-stream is stream_truncated --------------------------------
  ask "$MS" "cut the line @stream_drop"
  expect_rc "$v stream drop" 1
  expect_jq "$v stream drop" '.steps[0].error.class == "stream_truncated"'
  expect_jq "$v stream drop" ".steps[0].error.message | test(\"$v: stream cut after [0-9]+ chunks: the connection failed\")"
  # A retry starts the answer over, and says so in the printed text.
  sed 's/^  - id: ask$/  - id: ask\n    retry: {max_attempts: 2, base_delay: 1ms}/' "$MS" >"$TMP/$v-retry.yaml"
  frl run "$TMP/$v-retry.yaml" --stream --input '{"text": "cut the line @stream_drop"}'
  expect_rc "$v --stream, dropped twice" 1
  expect_out "$v --stream, dropped: the text so far" "fake-$v heard"
  expect_out "$v --stream, dropped: the retry starts over" "[fluxroute: stream_truncated after 2 streamed chunk(s); the answer starts over]"
  [ "$(grep -o "fake-$v heard" "$TMP/out" | wc -l)" -eq 2 ] &&
    ok "$v --stream, dropped: both attempts streamed" ||
    not_ok "$v --stream, dropped: both attempts streamed"

  # ---- record -> replay, with gaps and with a drop ------------------------------------------
  frl run "$MS" --json --trace "$TMP/$v-gap.json" --input '{"text": "record me @stream_gap=50"}'
  expect_rc "$v recorded stream" 0
  frl run "$MS" --json --trace "$TMP/$v-drop.json" --input '{"text": "record me @stream_drop"}'
  expect_rc "$v recorded dropped stream" 1
  jq -e '[.steps[0].attempts[0].effects[] | .kind] | .[0:3] == ["breaker", "http", "chunk"] or .[0:2] == ["http", "chunk"]' \
    "$TMP/$v-gap.json" >/dev/null &&
    ok "$v trace: the http effect comes before the chunks made while it streamed" ||
    not_ok "$v trace: the http effect comes before the chunks made while it streamed" \
      "$(jq -c '[.steps[0].attempts[0].effects[] | .kind]' "$TMP/$v-gap.json")"
  jq -e '[.steps[0].attempts[0].effects[] | select(.kind == "http")][0] | .status == "NETWORK" and (.response.body | length > 0)' \
    "$TMP/$v-drop.json" >/dev/null &&
    ok "$v trace: a dropped stream keeps the bytes that arrived" ||
    not_ok "$v trace: a dropped stream keeps the bytes that arrived" \
      "$(jq -c '[.steps[0].attempts[0].effects[] | select(.kind == "http")][0] | del(.request)' "$TMP/$v-drop.json")"
done

# ---- an isolated llm agent streams too ----------------------------------------------------
manifest "$TMP/iso.yaml" openai openai-model "$(base_url openai)" FAKE_STREAM_KEY true
sed -i 's/^    plugin: llm$/    plugin: llm\n    isolation: process/' "$TMP/iso.yaml"
grep -q "isolation: process" "$TMP/iso.yaml" && ok "isolated manifest written" || not_ok "isolated manifest written"
frl run "$TMP/iso.yaml" --stream --input '{"text": "isolated hello"}'
expect_rc "isolated --stream" 0
expect_out "isolated --stream" "fake-openai heard: isolated hello"
ask "$TMP/iso.yaml" "isolated drop @stream_drop"
expect_jq "isolated stream drop" '.steps[0].error.class == "stream_truncated"'
frl run "$TMP/iso.yaml" --json --trace "$TMP/iso-gap.json" --input '{"text": "isolated @stream_gap=50"}'
expect_rc "isolated recorded stream" 0
frl run "$TMP/iso.yaml" --json --trace "$TMP/iso-drop.json" --input '{"text": "isolated @stream_drop"}'
expect_rc "isolated recorded dropped stream" 1

# ---- run --stream labels each step's text; says so when nothing streams ---------------------
sed 's/^  - step: ask$/  - step: ask\n  - {step: again, agent: ask, depends_on: [ask]}/' \
  "$TMP/openai-stream.yaml" >"$TMP/two-streams.yaml"
frl run "$TMP/two-streams.yaml" --stream --input '{"text": "twice"}'
expect_rc "two streamed steps" 0
check "two streamed steps: each under its header, set apart" python3 -c '
import sys
out = open(sys.argv[1]).read()
want = "==> ask <==\nfake-openai heard: twice\n\n==> again <==\nfake-openai heard: twice\n\n"
assert out.startswith(want), repr(out[:200])' "$TMP/out"
frl run "$FR_SRCDIR/manifests/hello.yaml" --stream
expect_rc "--stream, nothing streams" 0
expect_err "--stream, nothing streams: said once" "no agent of $FR_SRCDIR/manifests/hello.yaml streams"
check "--stream, nothing streams: no blank lines before the report" sh -c "head -c 9 '$TMP/out' | grep -q '^succeeded'"

# ---- serve: Server-Sent Events carry the tokens while the vendor is still sending ----------
mkdir -p "$TMP/sm"
manifest "$TMP/sm/chat.yaml" openai openai-model "$(base_url openai)" FAKE_STREAM_KEY true
printf 'providers:\n  - id: vendor\n    plugin: openai\n    config: {model: openai-model, base_url: "%s", api_key_env: FAKE_STREAM_KEY}\n' \
  "$(base_url openai)" >"$TMP/sprov.yaml"
printf 'keys:\n  - {id: k, sha256: %s, tenant: t, namespace: default, role: operator}\n' \
  "$(printf %s sse-key | sha256sum | cut -d' ' -f1)" >"$TMP/skeys.yaml"
"$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/sm" --keys "$TMP/skeys.yaml" \
  --providers "$TMP/sprov.yaml" >"$TMP/serve.out" 2>"$TMP/serve.err" </dev/null &
spid=$!
surl=""
for _ in $(seq 1 600); do
  surl=$(sed -n 's/^listening on //p' "$TMP/serve.out"); [ -n "$surl" ] && break; sleep 0.05
done
: >"$TMP/sse.txt"
curl -sN --max-time 30 -H "Authorization: Bearer sse-key" -H "Accept: text/event-stream" \
  -d '{"manifest": "chat.yaml", "input": {"text": "one two three @stream_gap=400"}}' \
  "$surl/v1/run" >"$TMP/sse.txt" &
cpid=$!
EARLY=0
for _ in $(seq 1 1500); do
  if grep -q "^event: token" "$TMP/sse.txt"; then
    grep -q "^event: report" "$TMP/sse.txt" || EARLY=1
    break
  fi
  kill -0 "$cpid" 2>/dev/null || break
  sleep 0.02
done
wait "$cpid"
kill -TERM "$spid"; wait "$spid" 2>/dev/null
[ "$EARLY" = 1 ] && ok "serve SSE: token events arrive before the run ends" ||
  not_ok "serve SSE: token events arrive before the run ends" "$(head -c 600 "$TMP/sse.txt")"
grep -q '^event: report' "$TMP/sse.txt" && ok "serve SSE: ends with the report" ||
  not_ok "serve SSE: ends with the report" "$(tail -c 600 "$TMP/sse.txt")"
[ "$(grep -c '^event: token' "$TMP/sse.txt")" -ge 4 ] && ok "serve SSE: one event per streamed chunk" ||
  not_ok "serve SSE: one event per streamed chunk" "$(grep -c '^event: token' "$TMP/sse.txt")"

# ---- replays need neither the server nor the key --------------------------------------------
stop_fakes
for t in openai-gap openai-drop anthropic-gap anthropic-drop gemini-gap gemini-drop iso-gap iso-drop; do
  env -u FAKE_STREAM_KEY "$FLUXROUTE" replay "$TMP/$t.json" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  expect_rc "$t: replay offline" 0
  expect_out "$t: replay offline" "replay identical"
done

finish
