#!/bin/sh
# make bench: what tenant and key limits add per request with `--state redis` (issue 26).
# One serve on a real redis-server (127.0.0.1, ephemeral port); the same runs by a key with
# limits (requests and tokens per minute, concurrent runs, on its tenant and itself) and by
# one without.  Round trips: the EVALSHA/EVAL calls Redis counted (INFO commandstats) per
# run, for a run with no provider call (admission + end of run) and with one; time: the
# mean latency of sequential runs over one keep-alive connection, limited minus unlimited
# (the best of 5 rounds each), and the time Redis spends per script call.  Prints one JSON object.  env: BENCH_LIMITS_RUNS (300).
FLUXROUTE=$1
FR_SRCDIR=$2
export FLUXROUTE FR_SRCDIR
. "$FR_SRCDIR/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
trap 'stop_serve; stop_redis; rm -rf "$TMP"' EXIT
N=${BENCH_LIMITS_RUNS:-300}
command -v redis-server >/dev/null 2>&1 || { echo '{"skipped": "no redis-server"}'; exit 0; }
start_redis >/dev/null || { echo '{"skipped": "redis-server did not start"}'; exit 0; }
mkdir -p "$TMP/m"
BIG=100000000
cat >"$TMP/keys.yaml" <<YAML
tenants:
  - {id: lim, limits: {requests_per_minute: $BIG, tokens_per_minute: $BIG, concurrent_runs: 1000}}
keys:
  - {id: lim-op, sha256: $(sha lim-key), tenant: lim, namespace: bench, role: operator, limits: {requests_per_minute: $BIG, tokens_per_minute: $BIG}}
  - {id: free-op, sha256: $(sha free-key), tenant: free, namespace: bench, role: operator}
YAML
printf 'providers:\n  - {id: quick, plugin: mock}\n' >"$TMP/providers.yaml"
printf 'router: {namespace: bench}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' \
  >"$TMP/m/echo.yaml"
printf 'router: {namespace: bench}\nagents: [{id: ask, plugin: llm, provider: quick, config: {prompt: "hi", max_tokens: 20}}]\npipeline: [{step: ask}]\n' \
  >"$TMP/m/ask.yaml"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --providers "$TMP/providers.yaml" \
  --state "$REDIS_URL" >/dev/null || { echo '{"skipped": "serve did not start"}'; exit 0; }

# KEY MANIFEST: N sequential runs over one connection; prints the mean latency in µs.
batch() {
  : >"$TMP/curl.cfg"
  for i in $(seq 1 "$N"); do
    [ "$i" -gt 1 ] && echo next >>"$TMP/curl.cfg"
    printf 'url = "%s/v1/run"\nrequest = "POST"\ndata = "{\\"manifest\\": \\"%s\\"}"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
      "$SERVE_URL" "$2" "$1" >>"$TMP/curl.cfg"
  done
  curl -s -K "$TMP/curl.cfg" | awk '$1 != 200 {bad++} {s += $2} END {if (bad) print -1; else printf "%d\n", s / NR * 1000000}'
}
evals() { rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_eval(sha)?:/ {n += $3} END {print n + 0}'; }
# KEY MANIFEST: Redis script calls per run.
trips() {
  rcli config resetstat >/dev/null
  batch "$1" "$2" >/dev/null
  echo "$(evals) $N" | awk '{printf "%.2f\n", $1 / $2}'
}
# The best mean of 5 rounds each, limited and unlimited alternating (a shared machine).
best() {
  for _ in 1 2 3 4 5; do
    echo "free $(batch free-key ask.yaml)"
    echo "lim $(batch lim-key ask.yaml)"
  done >"$TMP/rounds"
  t_free=$(awk '$1 == "free" {print $2}' "$TMP/rounds" | sort -n | head -1)
  t_lim=$(awk '$1 == "lim" {print $2}' "$TMP/rounds" | sort -n | head -1)
}
batch lim-key ask.yaml >/dev/null # warm-up: scripts loaded, connections open
batch free-key ask.yaml >/dev/null
free_echo=$(trips free-key echo.yaml)
lim_echo=$(trips lim-key echo.yaml)
free_ask=$(trips free-key ask.yaml)
lim_ask=$(trips lim-key ask.yaml)
# What Redis spends per script call (server side), from the limited runs just counted.
script_us=$(rcli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')
best
jq -n --argjson fe "$free_echo" --argjson le "$lim_echo" --argjson fa "$free_ask" \
  --argjson la "$lim_ask" --argjson tf "$t_free" --argjson tl "$t_lim" --argjson n "$N" \
  --argjson su "${script_us:-0}" '{
  runs: $n,
  round_trips_per_run: {admission_and_end: ($le - $fe), per_provider_call: (($la - $fa) - ($le - $fe))},
  redis_us_per_script: $su,
  mean_us: {unlimited: $tf, limited: $tl, added: ($tl - $tf)}}'
