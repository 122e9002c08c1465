#!/bin/sh
# Fair shares in `fluxroute serve` (issue 22): runs in flight per tenant
# (--max-runs-per-tenant), retention per tenant and by bytes (--retention-per-tenant,
# --retention-bytes) so that one tenant never pushes out another's runs, Server-Sent-Events
# streams that cost nothing while they wait (and hold no request thread), and run ids
# nobody can predict.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
mkdir -p "$TMP/m"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: a-op, sha256: $(sha a-key), tenant: alpha, namespace: alpha, role: operator}
  - {id: b-op, sha256: $(sha b-key), tenant: beta, namespace: beta, role: operator}
  - {id: c-op, sha256: $(sha c-key), tenant: gamma, namespace: gamma, role: operator}
YAML
A="Authorization: Bearer a-key"
B="Authorization: Bearer b-key"
C="Authorization: Bearer c-key"
# The server's providers answer after a delay (the mock provider's, no chaos): "slow" 2 s,
# "pause" 0.7 s, "long" a minute (those runs are cancelled).
cat > "$TMP/providers.yaml" <<'YAML'
providers:
  - {id: slow, plugin: mock, config: {delay: 2s}}
  - {id: pause, plugin: mock, config: {delay: 700ms}}
  - {id: long, plugin: mock, config: {delay: 60s}}
YAML
for ns in alpha beta gamma; do
  printf 'router: {namespace: %s}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' \
    "$ns" > "$TMP/m/echo-$ns.yaml"
  for p in slow pause long; do
    cat > "$TMP/m/$p-$ns.yaml" <<YAML
router: {namespace: $ns}
agents: [{id: ask, plugin: llm, provider: $p, config: {prompt: "Tell me about {{input.topic}}", stream: true}}]
pipeline: [{step: ask}]
input: {topic: rivers}
YAML
  done
done
SERVE="--manifest-dir $TMP/m --keys $TMP/keys.yaml --providers $TMP/providers.yaml"

# cancel AUTH ID...: cancels runs.
cancel() {
  local auth=$1 id
  shift
  for id in "$@"; do req DELETE "/v1/runs/$id" '' -H "$auth"; done
}
# wait_done AUTH ID...: polls each run until it is no longer running (10 s at most).
wait_done() {
  local auth=$1 id
  shift
  for id in "$@"; do
    for _ in $(seq 1 200); do
      req GET "/v1/runs/$id" '' -H "$auth"
      [ "$(jq -r .status "$TMP/out" 2>/dev/null)" = running ] || break
      sleep 0.05
    done
  done
}
# run_id AUTH BODY [CURL ARGS...]: a run; its id in $rid.
run_id() {
  local auth=$1 body=$2
  shift 2
  req POST /v1/run "$body" -H "$auth" "$@"
  rid=$(jq -r '.run_id // empty' "$TMP/out" 2>/dev/null)
}
# kept AUTH ID...: how many of these runs are still there (200).
kept() {
  local auth=$1 n=0 id
  shift
  for id in "$@"; do
    req GET "/v1/runs/$id" '' -H "$auth"
    [ "$code" = 200 ] && n=$((n + 1))
  done
  echo "$n"
}
# await_runs N: waits (2 s at most) until N streamed or async runs are under way in serve
# (their threads are named fr-async-run).
await_runs() {
  for _ in $(seq 1 100); do
    [ "$(cat /proc/"$SERVE_PID"/task/*/comm 2>/dev/null | grep -cx fr-async-run)" -ge "$1" ] && return
    sleep 0.02
  done
}
expect_eq() { # NAME GOT WANT (the last answer, maybe a large report, is not shown)
  rm -f "$TMP/out"
  if [ "$2" = "$3" ]; then ok "$1: $3"; else not_ok "$1: $3" "got $2"; fi
}

# ---- flags --------------------------------------------------------------------------------------
fr serve --addr 127.0.0.1:0 $SERVE --retention-bytes 12X
expect_rc "--retention-bytes with a bad unit" 2
expect_err "--retention-bytes with a bad unit" "--retention-bytes 12X: unknown unit"
fr serve --addr 127.0.0.1:0 $SERVE --max-runs-per-tenant 0
expect_rc "--max-runs-per-tenant 0" 2
expect_err "--max-runs-per-tenant 0" "--max-runs-per-tenant"
fr serve --help
expect_out "serve --help" "--max-runs-per-tenant N"
expect_out "serve --help" "--retention-per-tenant N"
expect_out "serve --help" "--retention-bytes SIZE"

# ---- runs in flight per tenant -------------------------------------------------------------------
# --max-runs 5: each tenant's default share is a quarter of it, rounded up: 2.
start_serve $SERVE --max-runs 5 || exit 1
# Six async runs of alpha at once: two are admitted, four refused.
pids=""
for i in 1 2 3 4 5 6; do
  curl -s -o "$TMP/flood$i.json" -w '%{http_code}\n' --max-time 20 -H "$A" \
    -d '{"manifest": "long-alpha.yaml", "async": true}' "$SERVE_URL/v1/run" > "$TMP/flood$i.code" &
  pids="$pids $!"
done
wait $pids
n202=$(cat "$TMP"/flood*.code | grep -c '^202$')
n429=$(cat "$TMP"/flood*.code | grep -c '^429$')
expect_eq "6 concurrent async runs of one tenant, default share: admitted" "$n202" 2
expect_eq "6 concurrent async runs of one tenant, default share: refused" "$n429" 4
alpha_runs=$(cat "$TMP"/flood*.json | jq -r '.run_id // empty')
cp "$(grep -l too_many_runs "$TMP"/flood*.json | head -1)" "$TMP/out"
expect_jq "tenant cap: 429 names it" '.error.code == "too_many_runs" and (.error.message | test("tenant \"alpha\" has 2 runs in flight, its cap \\(--max-runs-per-tenant\\)"))'
req POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "$A"
expect_code "tenant cap: a synchronous run of the same tenant" 429
check "tenant cap: Retry-After" grep -qi '^Retry-After: 1' "$TMP/headers"
req POST /v1/run '{"manifest": "long-alpha.yaml"}' -H "$A" -H "Accept: text/event-stream"
expect_code "tenant cap: a streamed run of the same tenant" 429
# The others still run: beta takes its two, gamma the last server slot.
req POST /v1/run '{"manifest": "echo-beta.yaml"}' -H "$B"
expect_code "another tenant runs while alpha is at its cap" 200
run_id "$B" '{"manifest": "long-beta.yaml", "async": true}'; b1=$rid
expect_code "beta's first async run" 202
run_id "$B" '{"manifest": "long-beta.yaml", "async": true}'; b2=$rid
expect_code "beta's second async run" 202
req POST /v1/run '{"manifest": "long-beta.yaml", "async": true}' -H "$B"
expect_code "beta at its cap" 429
run_id "$C" '{"manifest": "long-gamma.yaml", "async": true}'; c1=$rid
expect_code "gamma takes the last slot" 202
req POST /v1/run '{"manifest": "echo-gamma.yaml"}' -H "$C"
expect_code "server cap" 429
expect_jq "server cap: 429 names it" '.error.code == "too_many_runs" and (.error.message | test("5 runs in flight on this server, its cap \\(--max-runs\\)"))'
# Finished (here cancelled) runs give their slots back.
cancel "$A" $alpha_runs
cancel "$B" "$b1" "$b2"
cancel "$C" "$c1"
wait_done "$A" $alpha_runs
wait_done "$B" "$b1" "$b2"
wait_done "$C" "$c1"
req POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "$A"
expect_code "alpha runs again once its runs are over" 200
stop_serve

# ---- Server-Sent Events: no busy wait, no request thread held ------------------------------------
# Four streams of a run that waits 2 s on its provider, on two request threads: serve's CPU
# time over the streamed run stays small (a busy wait burns a core per request thread), and
# /healthz and quick runs are answered meanwhile.
start_serve $SERVE --threads 2 || exit 1
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
c0=$(cpu_ticks)
pids=""
for i in 1 2 3 4; do
  curl -s -N --max-time 20 -X POST -H "$A" -H "Accept: text/event-stream" \
    --data '{"manifest": "slow-alpha.yaml"}' "$SERVE_URL/v1/run" > "$TMP/sse$i.txt" &
  pids="$pids $!"
done
await_runs 4
req_within 1000 "healthz is answered at once while 4 streams wait on 2 request threads" GET /healthz
expect_code "healthz while 4 streams wait" 200
req_within 1000 "a quick run is answered at once while 4 streams wait" POST /v1/run \
  '{"manifest": "echo-alpha.yaml"}' -H "$A"
expect_code "a quick run while 4 streams wait" 200
still=0
for p in $pids; do kill -0 "$p" 2>/dev/null && still=$((still + 1)); done
expect_eq "the streams were still waiting meanwhile" "$still" 4
wait $pids
c1=$(cpu_ticks)
n_ok=0
for i in 1 2 3 4; do
  [ "$(grep '^event:' "$TMP/sse$i.txt" | tail -1)" = "event: report" ] &&
    grep '^data: ' "$TMP/sse$i.txt" | tail -1 | sed 's/^data: //' | jq -e '.status == "succeeded"' >/dev/null &&
    n_ok=$((n_ok + 1))
done
expect_eq "four streams: steps, then the report" "$n_ok" 4
ms=$(( (c1 - c0) * 1000 / tck ))
rm -f "$TMP/out"
if [ "$ms" -lt 300 ]; then ok "serve's CPU time over a 2 s streamed run with 4 streams: ${ms}ms (< 300ms)"; else
  not_ok "serve's CPU time over a 2 s streamed run with 4 streams: < 300ms" "${ms}ms"; fi
# A client that leaves while its stream waits costs nothing either; shutdown with a
# stream still waiting ends it and stops (no suspended connection is left behind).
curl -s -N --max-time 0.2 -X POST -H "$A" -H "Accept: text/event-stream" \
  --data '{"manifest": "pause-alpha.yaml"}' "$SERVE_URL/v1/run" > /dev/null
curl -s -N --max-time 20 -X POST -H "$A" -H "Accept: text/event-stream" \
  --data '{"manifest": "pause-alpha.yaml"}' "$SERVE_URL/v1/run" > "$TMP/sse-late.txt" &
p=$!
await_runs 2
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"; src=$?
SERVE_PID=""
wait $p
expect_eq "SIGTERM while a stream waits: exit" "$src" 0
if [ "$(grep '^event:' "$TMP/sse-late.txt" | tail -1)" = "event: report" ]; then
  ok "SIGTERM while a stream waits: the run finishes and its stream gets the report"; else
  not_ok "SIGTERM while a stream waits: the run finishes and its stream gets the report" "$(cat "$TMP/sse-late.txt")"; fi

# ---- run ids ------------------------------------------------------------------------------------
# serve's run ids used to be two consecutive outputs of a splitmix64 generator: the second
# half of an id follows from the first (16 guesses for the 4 bits the UUID version hides).
start_serve $SERVE || exit 1
ids=""
for i in 1 2 3 4; do
  run_id "$A" '{"manifest": "echo-alpha.yaml"}'
  ids="$ids $rid"
done
cat > "$TMP/predict.py" <<'PY'
import sys
M = (1 << 64) - 1
def mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def unshift(x, k):
    y = x
    for _ in range(64 // k + 1):
        y = x ^ (y >> k)
    return y
def unmix(z):
    z = unshift(z, 31)
    z = (z * pow(0x94d049bb133111eb, -1, 1 << 64)) & M
    z = unshift(z, 27)
    z = (z * pow(0xbf58476d1ce4e5b9, -1, 1 << 64)) & M
    return unshift(z, 30)
predictable = 0
for rid in sys.argv[1:]:
    b = bytes.fromhex(rid.replace("-", ""))
    hi, lo = int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little")
    for nib in range(16):  # the version nibble overwrote bits 52-55 of the first half
        h = (hi & ~(0xf << 52)) | (nib << 52)
        guess = mix((unmix(h) + 0x9e3779b97f4a7c15) & M)
        if (guess ^ lo) & ~0xc0 & M == 0:  # the variant overwrote bits 6-7 of the second
            predictable += 1
            break
print(predictable)
PY
n=$(echo $ids | wc -w)
expect_eq "four runs, four version 4 UUIDs" "$(echo $ids | tr ' ' '\n' | grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')" 4
expect_eq "four distinct ids" "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)" "$n"
expect_eq "no run id's second half follows from its first (splitmix64)" "$(python3 "$TMP/predict.py" $ids)" 0
stop_serve

# ---- retention: a flooding tenant pushes out only its own runs -----------------------------------
# 200 KB inputs; echo returns its input, so a traced run holds about three copies of it.
head -c 200000 /dev/zero | tr '\0' 'x' | jq -Rc '{manifest: "echo-alpha.yaml", input: {blob: .}, trace: true}' > "$TMP/big.json"
jq -c '.async = true' "$TMP/big.json" > "$TMP/big-async.json"
start_serve $SERVE --retention-count 5 --max-body 4194304 --max-runs 64 || exit 1
run_id "$B" '{"manifest": "echo-beta.yaml", "input": {"b": 1}}'; b1=$rid
run_id "$B" '{"manifest": "echo-beta.yaml", "async": true, "trace": true}'; b2=$rid
wait_done "$B" "$b2"
a_ids=""
for i in 1 2 3 4 5 6; do
  if [ $((i % 3)) = 0 ]; then run_id "$A" "" --data-binary @"$TMP/big.json"
  else run_id "$A" "{\"manifest\": \"echo-alpha.yaml\", \"input\": {\"i\": $i}}"; fi
  a_ids="$a_ids $rid"
done
async_ids=""
for i in 1 2; do
  run_id "$A" "" --data-binary @"$TMP/big-async.json"
  async_ids="$async_ids $rid"
done
wait_done "$A" $async_ids
req GET "/v1/runs/$b1" '' -H "$B"
expect_code "alpha's flood of 8 runs (some large, traced, async): beta's earlier run" 200
expect_jq "beta's earlier run: its report" '.report.steps[0].output.input == {"b": 1}'
req GET "/v1/runs/$b2/trace" '' -H "$B"
expect_code "alpha's flood: beta's traced run keeps its trace" 200
set -- $a_ids
req GET "/v1/runs/$1" '' -H "$A"
expect_code "alpha's flood: alpha's oldest run is gone" 404
expect_eq "alpha's flood: alpha keeps what beta leaves of the 5" "$(kept "$A" $a_ids $async_ids)" 3
stop_serve

# Per tenant: alpha over its share of 3 loses its oldest; beta keeps its own.
start_serve $SERVE --retention-per-tenant 3 || exit 1
run_id "$B" '{"manifest": "echo-beta.yaml"}'; b1=$rid
a_ids=""
for i in 1 2 3 4 5; do
  run_id "$A" "{\"manifest\": \"echo-alpha.yaml\", \"input\": {\"i\": $i}}"
  a_ids="$a_ids $rid"
done
set -- $a_ids
expect_eq "--retention-per-tenant 3: alpha's two oldest are gone" "$(kept "$A" "$1" "$2")" 0
expect_eq "--retention-per-tenant 3: alpha's three newest are kept" "$(kept "$A" "$3" "$4" "$5")" 3
req GET "/v1/runs/$5" '' -H "$A"
expect_jq "--retention-per-tenant 3: the newest report" '.report.steps[0].output.input == {"i": 5}'
expect_eq "--retention-per-tenant 3: beta's run is kept" "$(kept "$B" "$b1")" 1
stop_serve

# By bytes: 1.5 MiB holds beta's traced run of a 50 KB input and one of alpha's of 200 KB
# (report, trace and the kept input: about 0.2 and 0.8 MB), not two of alpha's: what goes
# is alpha's (the largest holder), never beta's.
start_serve $SERVE --retention-bytes 1536K --max-body 4194304 || exit 1
head -c 50000 /dev/zero | tr '\0' 'y' | jq -Rc '{manifest: "echo-beta.yaml", input: {blob: .}, trace: true}' > "$TMP/mid.json"
run_id "$B" "" --data-binary @"$TMP/mid.json"; b1=$rid
a_ids=""
for i in 1 2 3 4; do
  run_id "$A" "" --data-binary @"$TMP/big.json"
  a_ids="$a_ids $rid"
done
set -- $a_ids
expect_eq "--retention-bytes 1536K: beta's traced run is kept" "$(kept "$B" "$b1")" 1
req GET "/v1/runs/$b1/trace" '' -H "$B"
expect_code "--retention-bytes 1536K: beta's trace" 200
expect_eq "--retention-bytes 1536K: alpha's oldest three are gone" "$(kept "$A" "$1" "$2" "$3")" 0
req GET "/v1/runs/$4" '' -H "$A"
expect_code "--retention-bytes 1536K: alpha's newest is kept" 200
stop_serve
finish
