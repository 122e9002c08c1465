#!/bin/sh
# A gateway request alone in serve, on a request thread that serves its connection only,
# runs on that thread (issue 27: no hand-off to a pipeline's driver and back), and holding
# the thread stalls nobody: while such a request waits on a slow vendor, clients on other
# connections are answered at once, gateway and other requests alike, and the slow request
# still gets its answer.  With one request thread no request is ever held.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
trap 'stop_serve; stop_fakes; rm -rf "$TMP"' EXIT

export FAKE_HELD_KEY=sk-held-test-secret
start_fake --openai-key "$FAKE_HELD_KEY" || exit 1
mkdir -p "$TMP/m"
KEY=held-test-key-0123456789
printf 'keys:\n  - {id: k, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(sha "$KEY")" >"$TMP/keys.yaml"
printf 'providers:\n  - {id: fake, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:%s/v1", api_key_env: FAKE_HELD_KEY}}\n' \
  "$FAKE_PORT" >"$TMP/providers.yaml"
printf 'routes:\n  - {name: chat, targets: [{provider: fake}], timeout: 20s}\n  - {name: flow, pipeline: flow.yaml}\n' \
  >"$TMP/routes.yaml"
# A pipeline route: its manifest's plugins are the operator's choice and may hang, so its
# runs never hold a request thread (here the same built-in llm: the route kind decides).
printf 'router: {namespace: acme}\nagents:\n  - {id: a, plugin: llm, provider: fake, config: {prompt: "{{input.messages.0.content}}"}}\npipeline: [{step: a}]\n' \
  >"$TMP/m/flow.yaml"

MODEL=chat
ask() { # TEXT: the body of a completion of route $MODEL asking TEXT
  printf '{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' "$MODEL" "$1"
}
threads() { # NAME: how many threads of that name serve has (fr-driver: pipeline drivers)
  cat /proc/"$SERVE_PID"/task/*/comm 2>/dev/null | grep -c "^$1\$"
}

start_serve --threads 2 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
  --providers "$TMP/providers.yaml" --routes "$TMP/routes.yaml" || exit 1
# A wait for the server to list one run running (the slow request in flight).
wait_running() {
  running=""
  for _ in $(seq 1 200); do
    req GET /v1/runs "" -H "Authorization: Bearer $KEY"
    running=$(jq -r '[.runs[]? | select(.status == "running")] | length' "$TMP/out" 2>/dev/null)
    [ "$running" = 1 ] && return 0
    sleep 0.02
  done
  return 1
}
# The server's very first request, which waits 1 s on the vendor: a route with no runs
# measured yet (or a slow one) is held as well, rather than given a thread of its own.
curl -s -o "$TMP/first.out" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' --data-binary "$(ask "first @slow=1000")" \
  "$SERVE_URL/v1/chat/completions" >"$TMP/first.code" &
first=$!
if wait_running; then
  n="$(threads fr-driver) $(threads fr-gateway)"
  if [ "$n" = "0 0" ]; then ok "the first request, slow, is held by its request thread"
  else not_ok "the first request, slow, is held by its request thread" "driver and gateway threads: $n"; fi
else
  not_ok "the first request is in flight" "$(cat "$TMP/out")"
fi
wait "$first"
if [ "$(cat "$TMP/first.code")" = 200 ]; then ok "the first request is answered"
else not_ok "the first request is answered" "$(cat "$TMP/first.code") $(head -c 300 "$TMP/first.out")"; fi

# One client, one keep-alive connection, requests one after another: each is alone.
seq_requests() { # N: N completions over one connection; their statuses, one per line
  set --
  i=0
  while [ $i -lt "$N" ]; do
    i=$((i + 1))
    set -- "$@" -o "$TMP/seq.$i" "$SERVE_URL/v1/chat/completions"
  done
  curl -s -w '%{http_code}\n' --max-time 30 -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary "$(ask "hello")" "$@"
}
N=6
codes=$(seq_requests | sort -u | tr '\n' ' ')
if [ "$codes" = "200 " ]; then ok "requests one at a time: all answered 200"
else not_ok "requests one at a time: all answered 200" "$codes"; fi
if jq -e '.choices[0].message.content | test("heard")' "$TMP/seq.6" >/dev/null; then
  ok "requests one at a time: the vendor's answer"
else not_ok "requests one at a time: the vendor's answer" "$(head -c 300 "$TMP/seq.6")"; fi
n=$(threads fr-driver)
if [ "$n" = 0 ]; then ok "requests one at a time ran on their request thread: no driver thread"
else not_ok "requests one at a time ran on their request thread" "$n driver threads"; fi

# A request that waits 3 s on the vendor, alone: held on its request thread.
t0=$(date +%s%N)
curl -s -o "$TMP/slow.out" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' --data-binary "$(ask "take your time @slow=3000")" \
  "$SERVE_URL/v1/chat/completions" >"$TMP/slow.code" &
slow=$!
# It is in flight once serve lists it running.
wait_running
if [ "$running" = 1 ]; then ok "the slow request is in flight"; else not_ok "the slow request is in flight" "$(cat "$TMP/out")"; fi
n="$(threads fr-driver) $(threads fr-gateway)"
if [ "$n" = "0 0" ]; then ok "the slow request is held by its request thread (no driver, no thread of its own)"
else not_ok "the slow request is held by its request thread" "driver and gateway threads: $n"; fi
# Meanwhile others are answered on connections of their own, well before it ends.
req_within 1500 "while a request is held: another gateway request answered at once" \
  POST /v1/chat/completions "$(ask "quick one")" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json'
expect_code "while a request is held: another gateway request" 200
req_within 1500 "while a request is held: /healthz answered at once" GET /healthz
expect_code "while a request is held: /healthz" 200
if kill -0 "$slow" 2>/dev/null; then ok "the slow request was still waiting meanwhile"
else not_ok "the slow request was still waiting meanwhile" "it had ended"; fi
wait "$slow"
took_ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$(cat "$TMP/slow.code")" = 200 ] && jq -e '.choices[0].message.content | test("heard")' \
  "$TMP/slow.out" >/dev/null; then
  ok "the held request is answered (${took_ms}ms)"
else
  not_ok "the held request is answered" "$(cat "$TMP/slow.code") $(head -c 300 "$TMP/slow.out")"
fi

# The pipeline route's runs, one at a time too, go to their pipeline's driver.
before=$(threads fr-driver)
MODEL=flow
N=4
codes=$(seq_requests | sort -u | tr '\n' ' ')
if [ "$codes" = "200 " ]; then ok "a pipeline route's requests one at a time: answered"
else not_ok "a pipeline route's requests one at a time: answered" "$codes $(head -c 300 "$TMP/seq.1")"; fi
n=$(threads fr-driver)
if [ "$n" -gt "$before" ]; then ok "a pipeline route's runs are not held: they go to the pipeline's driver"
else not_ok "a pipeline route's runs are not held" "driver threads: $before before, $n after"; fi
MODEL=chat
stop_serve

# One request thread: it is never held (no other thread would take new connections).
start_serve --threads 1 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
  --providers "$TMP/providers.yaml" --routes "$TMP/routes.yaml" || exit 1
N=3
codes=$(seq_requests | sort -u | tr '\n' ' ')
if [ "$codes" = "200 " ]; then ok "one request thread: answered"
else not_ok "one request thread: answered" "$codes"; fi
n=$(threads fr-driver)
if [ "$n" -ge 1 ]; then ok "one request thread: runs go to the pipeline's driver"
else not_ok "one request thread: runs go to the pipeline's driver" "no driver thread"; fi
stop_serve
finish
