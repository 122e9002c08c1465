#!/bin/sh
# A gateway request of a targets route runs on its request thread as a coroutine of the
# thread's event loop (issue 27): where it waits on its vendor or a retry's back-off, the
# loop goes on serving other connections and runs, and no other thread is handed the run.
# With ONE request thread: three requests waiting 3 s each on the vendor are answered
# together after about 3 s (not one after another), a quick completion and /healthz are
# answered at once meanwhile, and no driver or run thread is started; so with 16 at once,
# and a retry's back-off waits on the loop too.  A pipeline route's runs still have a
# thread (their plugins may block).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
trap 'stop_serve; stop_fakes; rm -rf "$TMP"' EXIT

export FAKE_LOOP_KEY=sk-loop-test-secret
start_fake --openai-key "$FAKE_LOOP_KEY" || exit 1
mkdir -p "$TMP/m"
KEY=loop-test-key-0123456789
printf 'keys:\n  - {id: k, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(sha "$KEY")" >"$TMP/keys.yaml"
printf 'providers:\n  - {id: fake, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:%s/v1", api_key_env: FAKE_LOOP_KEY}}\n' \
  "$FAKE_PORT" >"$TMP/providers.yaml"
# "retrying": every attempt fails (@status=500 in the message) and is retried after 1 s.
printf 'routes:\n  - {name: chat, targets: [{provider: fake}], timeout: 20s}\n  - {name: retrying, targets: [{provider: fake}], retry: {max_attempts: 2, backoff: constant, base_delay: 1s}, timeout: 20s}\n  - {name: flow, pipeline: flow.yaml}\n' \
  >"$TMP/routes.yaml"
printf 'router: {namespace: acme}\nagents:\n  - {id: a, plugin: llm, provider: fake, config: {prompt: "{{input.messages.0.content}}"}}\npipeline: [{step: a}]\n' \
  >"$TMP/m/flow.yaml"

ask() { # MODEL TEXT: the body of a completion of route MODEL asking TEXT
  printf '{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' "$1" "$2"
}
threads() { # NAME: how many threads of that name serve has (fr-driver: pipeline drivers)
  cat /proc/"$SERVE_PID"/task/*/comm 2>/dev/null | grep -c "^$1\$"
}
complete() { # NAME MODEL TEXT: a completion in the background, its status in $TMP/NAME.code
  curl -s -o "$TMP/$1.out" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary "$(ask "$2" "$3")" \
    "$SERVE_URL/v1/chat/completions" >"$TMP/$1.code" &
}
answered() { # NAME: the completion NAME got 200 and the vendor's answer
  [ "$(cat "$TMP/$1.code" 2>/dev/null)" = 200 ] &&
    jq -e '.choices[0].message.content | test("heard")' "$TMP/$1.out" >/dev/null 2>&1
}
wait_running() { # N: waits (10 s at most) until serve lists N runs running
  running=""
  for _ in $(seq 1 500); do
    req GET /v1/runs "" -H "Authorization: Bearer $KEY"
    running=$(jq -r '[.runs[]? | select(.status == "running")] | length' "$TMP/out" 2>/dev/null)
    [ "$running" = "$1" ] && return 0
    sleep 0.02
  done
  return 1
}

start_serve --threads 1 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
  --providers "$TMP/providers.yaml" --routes "$TMP/routes.yaml" || exit 1

# Three requests that wait 3 s each on the vendor, at once, on the one request thread.
t0=$(date +%s%N)
complete slow1 chat "take your time @slow=3000"
p1=$!
complete slow2 chat "take your time too @slow=3000"
p2=$!
complete slow3 chat "and you @slow=3000"
p3=$!
if wait_running 3; then ok "three slow requests in flight at once on one request thread"
else not_ok "three slow requests in flight at once on one request thread" "running: $running"; fi
n="$(threads fr-driver) $(threads fr-gateway)"
if [ "$n" = "0 0" ]; then ok "the slow requests wait on the loop: no driver, no thread of their own"
else not_ok "the slow requests wait on the loop" "driver and gateway threads: $n"; fi
req_within 1500 "while three wait: another gateway request answered at once" \
  POST /v1/chat/completions "$(ask chat "quick one")" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json'
expect_code "while three wait: another gateway request" 200
req_within 1500 "while three wait: /healthz answered at once" GET /healthz
expect_code "while three wait: /healthz" 200
if kill -0 "$p1" 2>/dev/null; then ok "the slow requests were still waiting meanwhile"
else not_ok "the slow requests were still waiting meanwhile" "the first had ended"; fi
wait "$p1" "$p2" "$p3"
took_ms=$((($(date +%s%N) - t0) / 1000000))
if answered slow1 && answered slow2 && answered slow3; then ok "the three slow requests are answered"
else not_ok "the three slow requests are answered" "$(cat "$TMP/slow1.code" "$TMP/slow2.code" "$TMP/slow3.code") $(head -c 300 "$TMP/slow1.out")"; fi
# Waited together: well under the 9 s they would take one after another.
if [ "$took_ms" -lt 7000 ]; then ok "they waited together (${took_ms}ms for three 3 s waits)"
else not_ok "they waited together" "${took_ms}ms for three 3 s waits"; fi

# 16 quick completions at once: all answered, still no other thread.
i=0
pids=""
while [ $i -lt 16 ]; do
  i=$((i + 1))
  complete "q$i" chat "quick $i"
  pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
i=0
bad=""
while [ $i -lt 16 ]; do
  i=$((i + 1))
  answered "q$i" || bad="$bad q$i:$(cat "$TMP/q$i.code")"
done
if [ -z "$bad" ]; then ok "16 concurrent completions answered"
else not_ok "16 concurrent completions answered" "$bad"; fi
n="$(threads fr-driver) $(threads fr-gateway)"
if [ "$n" = "0 0" ]; then ok "16 concurrent completions ran on the loop: no driver, no thread of their own"
else not_ok "16 concurrent completions ran on the loop" "driver and gateway threads: $n"; fi

# A retry's back-off (1 s) is a wait on the loop too: /healthz is answered meanwhile.
t0=$(date +%s%N)
complete retried retrying "fail me @status=500"
pr=$!
wait_running 1
sleep 0.3 # inside the 1 s back-off (the first attempt fails at once)
req_within 500 "during a retry's back-off: /healthz answered at once" GET /healthz
expect_code "during a retry's back-off: /healthz" 200
wait "$pr"
took_ms=$((($(date +%s%N) - t0) / 1000000))
code=$(cat "$TMP/retried.code")
if [ "$code" = 503 ] && [ "$took_ms" -ge 1000 ]; then
  ok "the retried request failed after its back-off (${took_ms}ms, 503)"
else
  not_ok "the retried request failed after its back-off" "${took_ms}ms, $code $(head -c 300 "$TMP/retried.out")"
fi
req GET "/v1/runs?limit=1" "" -H "Authorization: Bearer $KEY"
rid=$(jq -r '.runs[0].run_id // .runs[0].id' "$TMP/out")
req GET "/v1/runs/$rid" "" -H "Authorization: Bearer $KEY"
attempts=$(jq '[.. | objects | select(has("attempts")) | .attempts[]] | length' "$TMP/out" 2>/dev/null)
if [ "$attempts" = 2 ]; then ok "its report lists both attempts"
else not_ok "its report lists both attempts" "$(head -c 400 "$TMP/out")"; fi

# A pipeline route's run is not the loop's: it has a thread of its own (or its pipeline's
# driver), which the request's wait on the vendor holds.
complete flow1 flow "hello @slow=2000"
pf=$!
wait_running 1
n=$(($(threads fr-driver) + $(threads fr-gateway)))
if [ "$n" -ge 1 ]; then ok "a pipeline route's run is not on the loop: it has a thread"
else not_ok "a pipeline route's run is not on the loop: it has a thread" "no driver or run thread"; fi
wait "$pf"
if answered flow1; then ok "a pipeline route's request: answered"
else not_ok "a pipeline route's request: answered" "$(cat "$TMP/flow1.code") $(head -c 300 "$TMP/flow1.out")"; fi
stop_serve
finish
