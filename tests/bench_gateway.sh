#!/bin/sh
# The gateway's overhead (issue 27, make bench): the same chat completion sent to
# tests/fake_vendor directly and through `fluxroute serve`'s POST /v1/chat/completions (a
# targets route to the openai plugin pointed at the same fake vendor), by
# tests/bench_gateway_load at concurrency 1 and 64, whole answers (latency) and streamed
# (time to the first token), p50 and p99; and the floor, GET /healthz of the same serve (one
# HTTP hop through libmicrohttpd and no work: what any gateway in front of the vendor adds
# at least); what the smallest event-driven pass-through made of serve's libraries adds
# (tests/bench_proxy_floor); and, when nginx is installed, what a no-op reverse proxy adds
# (the anchor).
# Everything runs on the same cores: the fake
# vendor (answering at once), serve and the load generator.  Direct and gateway runs
# alternate, BENCH_GW_ROUNDS times each, so drifts of the machine fall on both sides; a
# side's figure is the median over its rounds.  Prints one JSON object.
#   tests/bench_gateway.sh FLUXROUTE SRCDIR BUILDDIR
#   env: BENCH_GW_REQUESTS (c=1: requests per round, 2000; c=64: 4x), BENCH_GW_ROUNDS (3)
set -eu
FLUXROUTE=$1
SRCDIR=$2
BUILDDIR=$3
LOAD="$BUILDDIR/tests/bench_gateway_load"
N=${BENCH_GW_REQUESTS:-2000}
ROUNDS=${BENCH_GW_ROUNDS:-3}
VKEY=sk-bench-gateway
KEY=bench-gateway-key-0123456789
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-gw.XXXXXX")
fpid=""
spid=""
npid=""
xpid=""
cleanup() {
  [ -n "$npid" ] && kill "$npid" 2>/dev/null || true
  [ -n "$xpid" ] && kill "$xpid" 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  [ -n "$fpid" ] && kill "$fpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

. "$SRCDIR/tests/bench_lib.sh"
bench_start_fake_vendor bench_gateway --openai-key "$VKEY"
fpid=$fake_pid

mkdir -p "$TMP/m"
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$TMP/keys.yaml"
printf 'providers:\n  - {id: fake, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:%s/v1", api_key_env: BENCH_GW_VENDOR_KEY}}\n' \
  "$port" >"$TMP/providers.yaml"
printf 'routes:\n  - name: chat\n    targets: [{provider: fake}]\n' >"$TMP/routes.yaml"
BENCH_GW_VENDOR_KEY=$VKEY "$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" \
  --keys "$TMP/keys.yaml" --providers "$TMP/providers.yaml" --routes "$TMP/routes.yaml" \
  --max-runs 256 --max-runs-per-tenant 256 >"$TMP/out" 2>"$TMP/err" &
spid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^listening on //p' "$TMP/out")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$TMP/err" >&2; exit 1; }

# The same request both ways (the fake vendor answers "fake-openai heard: ..." in 7 words).
body() { # MODEL STREAM
  if [ "$2" = 1 ]; then so=',"stream":true,"stream_options":{"include_usage":true}'; else so=''; fi
  printf '{"model":"%s","messages":[{"role":"user","content":"say something short please"}]%s}' "$1" "$so"
}
body m 0 >"$TMP/direct0.json"
body m 1 >"$TMP/direct1.json"
body chat 0 >"$TMP/gw0.json"
body chat 1 >"$TMP/gw1.json"
# One request each way first: both must answer 200, or the figures mean nothing.
for side in direct gw; do
  if [ $side = direct ]; then u="http://127.0.0.1:$port/v1/chat/completions" a="Authorization: Bearer $VKEY"
  else u="$url/v1/chat/completions" a="Authorization: Bearer $KEY"; fi
  code=$(curl -sS -o "$TMP/check" -w '%{http_code}' -H 'Content-Type: application/json' -H "$a" \
    --data-binary @"$TMP/${side}0.json" "$u")
  [ "$code" = 200 ] || { echo "bench_gateway: $side answered $code: $(head -c 300 "$TMP/check")" >&2; exit 1; }
done

# measure SIDE CONCURRENCY STREAM REQUESTS: one round's JSON
measure() {
  if [ "$1" = direct ]; then
    "$LOAD" "http://127.0.0.1:$port/v1/chat/completions" "Authorization: Bearer $VKEY" \
      "$TMP/direct$3.json" "$2" "$4" "$3"
  else
    "$LOAD" "$url/v1/chat/completions" "Authorization: Bearer $KEY" "$TMP/gw$3.json" "$2" "$4" "$3"
  fi
}
rows=""
for stream in 0 1; do
  for c in 1 64; do
    n=$N
    [ "$c" = 64 ] && n=$((N * 4))
    : >"$TMP/direct.rounds"
    : >"$TMP/gw.rounds"
    for _ in $(seq 1 "$ROUNDS"); do
      measure direct "$c" "$stream" "$n" >>"$TMP/direct.rounds"
      measure gw "$c" "$stream" "$n" >>"$TMP/gw.rounds"
    done
    if ! kill -0 "$spid" 2>/dev/null; then
      wait "$spid" && rc=0 || rc=$?
      echo "bench_gateway: serve exited (status $rc) during concurrency $c, stream $stream:" >&2
      tail -20 "$TMP/err" >&2
      exit 1
    fi
    row=$(jq -s -c --arg c "$c" --arg s "$stream" '
      def med(f): (map(f) | sort) as $v | $v[($v | length - 1) / 2 | floor];
      (.[0:length/2]) as $d | (.[length/2:]) as $g |
      {concurrency: ($c | tonumber), stream: ($s == "1"),
       direct: {p50_us: ($d | med(.p50_us)), p99_us: ($d | med(.p99_us)), rps: ($d | med(.requests_per_sec)), errors: ($d | map(.errors) | add)},
       gateway: {p50_us: ($g | med(.p50_us)), p99_us: ($g | med(.p99_us)), rps: ($g | med(.requests_per_sec)), errors: ($g | map(.errors) | add)}}
      | .added_p50_us = .gateway.p50_us - .direct.p50_us | .added_p99_us = .gateway.p99_us - .direct.p99_us' \
      "$TMP/direct.rounds" "$TMP/gw.rounds")
    echo "$row" >&2
    rows="$rows$row
"
  done
done
# The floor: serve's GET /healthz at the same concurrencies, ROUNDS times, the median.
floor=""
for c in 1 64; do
  n=$N
  [ "$c" = 64 ] && n=$((N * 4))
  : >"$TMP/floor.rounds"
  for _ in $(seq 1 "$ROUNDS"); do
    "$LOAD" "$url/healthz" "Authorization: Bearer $KEY" - "$c" "$n" 0 >>"$TMP/floor.rounds"
  done
  row=$(jq -s -c --arg c "$c" '
    def med(f): (map(f) | sort) as $v | $v[($v | length - 1) / 2 | floor];
    {concurrency: ($c | tonumber), p50_us: med(.p50_us), p99_us: med(.p99_us), rps: med(.requests_per_sec), errors: (map(.errors) | add)}' \
    "$TMP/floor.rounds")
  echo "floor (GET /healthz): $row" >&2
  floor="$floor$row
"
done
# The anchor: what a no-op reverse proxy adds on this machine.  nginx (when installed; it is
# no dependency of the project: `apt-get install nginx-light`) with one worker, proxying to
# the same fake vendor over keep-alive upstream connections, measured like the gateway,
# rounds alternating with direct ones.  Any gateway's request crosses the same extra hop.
# anchor_rows NAME URL: direct and NAME (a pass-through at URL to the same vendor) at
# concurrency 1 and 64, whole answers, rounds alternating; prints {rows: [...]}.
anchor_rows() {
  arows=""
  for c in 1 64; do
    n=$N
    [ "$c" = 64 ] && n=$((N * 4))
    : >"$TMP/direct.rounds"
    : >"$TMP/anchor.rounds"
    for _ in $(seq 1 "$ROUNDS"); do
      measure direct "$c" 0 "$n" >>"$TMP/direct.rounds"
      "$LOAD" "$2" "Authorization: Bearer $VKEY" "$TMP/direct0.json" "$c" "$n" 0 >>"$TMP/anchor.rounds"
    done
    row=$(jq -s -c --arg c "$c" '
      def med(f): (map(f) | sort) as $v | $v[($v | length - 1) / 2 | floor];
      (.[0:length/2]) as $d | (.[length/2:]) as $g |
      {concurrency: ($c | tonumber),
       direct: {p50_us: ($d | med(.p50_us)), p99_us: ($d | med(.p99_us)), rps: ($d | med(.requests_per_sec)), errors: ($d | map(.errors) | add)},
       proxy: {p50_us: ($g | med(.p50_us)), p99_us: ($g | med(.p99_us)), rps: ($g | med(.requests_per_sec)), errors: ($g | map(.errors) | add)}}
      | .added_p50_us = .proxy.p50_us - .direct.p50_us | .added_p99_us = .proxy.p99_us - .direct.p99_us' \
      "$TMP/direct.rounds" "$TMP/anchor.rounds")
    echo "anchor ($1): $row" >&2
    arows="$arows$row
"
  done
  printf '%s' "$arows" | jq -s -c '{rows: .}'
}

# The event-driven floor (tests/bench_proxy_floor, built with the benchmarks): the smallest
# pass-through made of serve's own libraries, one epoll loop per thread driving a
# libmicrohttpd daemon and a libcurl multi handle (2 threads, as serve's request threads
# on 2 cores), no work per request.  What it adds is the floor of serve's design made
# event-driven on this machine.
"$BUILDDIR/tests/bench_proxy_floor" "http://127.0.0.1:$port/v1/chat/completions" 2 \
  >"$TMP/floor_proxy.out" 2>"$TMP/floor_proxy.err" &
xpid=$!
xport=$(bench_port_of "$TMP/floor_proxy.out")
if [ -n "$xport" ]; then
  event_floor=$(anchor_rows "event-driven floor" "http://127.0.0.1:$xport/v1/chat/completions")
else
  event_floor=$(jq -n -c --arg e "$(head -c 300 "$TMP/floor_proxy.err")" '{skipped: ("bench_proxy_floor did not start: " + $e)}')
fi
kill "$xpid" 2>/dev/null || true
wait "$xpid" 2>/dev/null || true
xpid=""
printf '%s' "$event_floor" >"$TMP/event_floor.json"

anchor='{"skipped":"nginx is not installed"}'
NGINX=$(command -v nginx 2>/dev/null || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -n "$NGINX" ]; then
  nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$TMP/nginx"
  cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  upstream vendor { server 127.0.0.1:$port; keepalive 128; }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://vendor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/start.err" &
  npid=$!
  up=""
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$nport/" && up=1 && break
    sleep 0.05
  done
  if [ -n "$up" ]; then
    anchor=$(anchor_rows nginx "http://127.0.0.1:$nport/v1/chat/completions")
  else
    anchor=$(jq -n -c --arg e "$(head -c 300 "$TMP/nginx/start.err")" '{skipped: ("nginx did not start: " + $e)}')
  fi
  kill "$npid" 2>/dev/null || true
  wait "$npid" 2>/dev/null || true
  npid=""
fi
printf '%s' "$anchor" >"$TMP/anchor.json"

oh=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" \
  --data-binary @"$TMP/gw0.json" "$url/v1/chat/completions" | tr -d '\r' |
  sed -n 's/^[Xx]-[Ff]lux[Rr]oute-[Oo]verhead-[Uu]s: *//p')
printf '%s' "$floor" | jq -s -c . >"$TMP/floor.json"
printf '%s' "$rows" | jq -s -c --arg n "$N" --arg r "$ROUNDS" --arg oh "${oh:-}" \
  --slurpfile floor "$TMP/floor.json" --slurpfile anchor "$TMP/anchor.json" \
  --slurpfile event "$TMP/event_floor.json" \
  '{requests_per_round: ($n | tonumber), rounds: ($r | tonumber), overhead_header_us: $oh, rows: ., healthz_floor: $floor[0], proxy_anchor: $anchor[0], event_floor: $event[0]}'
