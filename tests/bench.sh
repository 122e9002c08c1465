#!/bin/sh
# make bench: runs `fluxroute bench` on the benchmark manifests and writes the figures
# to docs/benchmarks.md (the machine it ran on included).
set -eu
FLUXROUTE=$1
SRCDIR=$2
BUILDDIR=$(dirname "$FLUXROUTE")
RUNS=${BENCH_RUNS:-5000}
WARMUP=${BENCH_WARMUP:-500}
OUT="$SRCDIR/docs/benchmarks.md"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d): $(nproc) cores, ${cpu:-unknown CPU}."
  echo "Each manifest is loaded once and run $RUNS times in-process after $WARMUP warm-up runs"
  echo "(\`fluxroute bench MANIFEST --runs $RUNS --warmup $WARMUP --json\`)."
  echo
  echo "| manifest | target (mean) | mean | p50 | p95 | p99 | runs/s | peak RSS |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$tmp"
for spec in "sequential10:50" "parallel100:1000"; do
  name=${spec%%:*}
  target=${spec##*:}
  json=$("$FLUXROUTE" bench "$SRCDIR/manifests/bench/$name.yaml" --runs "$RUNS" --warmup "$WARMUP" --json)
  echo "$json"
  echo "$json" | jq -r --arg n "$name" --arg t "$target" \
    '"| \($n) | ≤ \($t) µs | \(.mean_us) µs | \(.p50_us) µs | \(.p95_us) µs | \(.p99_us) µs | \(.runs_per_sec) | \(.peak_rss_kb) kB |"' >> "$tmp"
done

# Replay speed: a recorded run of 10 chained llm steps whose provider answers after 20 ms
# (manifests: tests/data/trace/slow_llm.yaml), replayed offline.
tr=$(mktemp)
"$FLUXROUTE" run "$SRCDIR/tests/data/trace/slow_llm.yaml" --trace "$tr" >/dev/null
t0=$(date +%s%N); "$FLUXROUTE" run "$SRCDIR/tests/data/trace/slow_llm.yaml" >/dev/null; t1=$(date +%s%N)
n=20
t2=$(date +%s%N)
for _ in $(seq 1 $n); do "$FLUXROUTE" replay "$tr" >/dev/null; done
t3=$(date +%s%N)
for _ in $(seq 1 $n); do "$FLUXROUTE" version >/dev/null; done
t4=$(date +%s%N)
rm -f "$tr"
run_ms=$(( (t1 - t0) / 1000000 ))
replay_ms=$(( (t3 - t2) / n / 1000000 ))
start_ms=$(( (t4 - t3) / n / 1000000 ))
{
  echo
  echo "Replay of a recorded run with 10 x 20 ms provider calls: the live run takes ${run_ms} ms;"
  echo "\`fluxroute replay\` takes ${replay_ms} ms per invocation (mean of $n), of which process"
  echo "start-up (\`fluxroute version\`) is ${start_ms} ms."
} >> "$tmp"

# ai_chain10: overhead over a bare libcurl loop of the same requests (tests/bench_ai.sh).
if [ -x "$BUILDDIR/tests/fake_vendor" ] && [ -x "$BUILDDIR/tests/bench_ai_chain" ]; then
  ai=$(BENCH_DELAY_MS=20 BENCH_PAIRS=${BENCH_AI_PAIRS:-300} sh "$SRCDIR/tests/bench_ai.sh" "$BUILDDIR" "$SRCDIR" | tail -1)
  ai0=$(BENCH_DELAY_MS=0 BENCH_PAIRS=1000 sh "$SRCDIR/tests/bench_ai.sh" "$BUILDDIR" "$SRCDIR" | tail -1)
  echo "$ai"
  echo "$ai0"
  {
    echo
    echo "ai_chain10 (10 chained llm steps, openai plugin, loopback fake server), overhead per run"
    echo "over a bare libcurl loop of the same 10 requests, alternating run by run in one process"
    echo "(embedding API vs libcurl; the order alternates every round); steps on the engine's driver thread"
    echo "(as \`fluxroute run\`), or on the calling thread (fr_engine_options.run_on_caller), each"
    echo "measured in a phase of its own with one engine open;"
    echo "target ≤ 500 µs:"
    echo
    echo "| server delay | steps on | rounds | fluxroute per run | bare loop per run | overhead: mean | median (p25-p75) of round differences |"
    echo "|---|---|---|---|---|---|---|"
    for row in "20 ms:$ai" "0 ms:$ai0"; do
      d=${row%%:*}; j=${row#*:}
      echo "$j" | jq -r --arg d "$d" '"| \($d) | driver | \(.pairs) | \(.fluxroute_us) µs | \(.bare_us) µs | \(.overhead_us_per_run) µs | \(.overhead_median_us) µs (\(.overhead_p25_us) to \(.overhead_p75_us)) |"'
      echo "$j" | jq -r --arg d "$d" '"| \($d) | caller | \(.pairs) | \(.caller_fluxroute_us) µs | \(.caller_bare_us) µs | \(.caller_overhead_us_per_run) µs | \(.caller_overhead_median_us) µs (\(.caller_overhead_p25_us) to \(.caller_overhead_p75_us)) |"'
    done
  } >> "$tmp"
fi

# ---- control plane: usage ingestion (tests/bench_controlplane.sh) --------------------------
# Events/s acknowledged by `fluxroute controlplane` (SQLite WAL, synchronous=FULL, so each
# acknowledged request has been fsynced), single events and batches of 100, 8 connections.
[ -x "$BUILDDIR/tests/cp_load" ] || make -s -C "$BUILDDIR" tests/cp_load
if cp=$(sh "$SRCDIR/tests/bench_controlplane.sh" "$BUILDDIR"); then
  echo "$cp"
  {
    echo
    echo "Control-plane usage ingestion (\`fluxroute controlplane\`, durability on: WAL +"
    echo "synchronous=FULL, one transaction and fsync per request; target ≥ 20,000 events/s batched):"
    echo
    echo "| request | connections | events | events/s |"
    echo "|---|---|---|---|"
    echo "$cp" | grep '^|'
  } >> "$tmp"
else
  echo "bench_controlplane.sh failed" >&2
  exit 1
fi

# ---- observability: tracing against a dead OTLP endpoint (issue #7) ---------------------
# sequential10 with TRACE_ENABLED against a closed port vs tracing off, interleaved (three
# rounds each, best mean kept): spans are queued and dropped off the run's threads, so the
# two should be within 5%.
best_off=""; best_on=""
for _ in 1 2 3 4 5 6 7; do
  off=$(env -u TRACE_ENABLED "$FLUXROUTE" bench "$SRCDIR/manifests/bench/sequential10.yaml" --runs "$RUNS" --warmup "$WARMUP" --json | jq .mean_us)
  on=$(TRACE_ENABLED=1 TRACE_ENDPOINT=127.0.0.1:1 "$FLUXROUTE" bench "$SRCDIR/manifests/bench/sequential10.yaml" --runs "$RUNS" --warmup "$WARMUP" --json 2>/dev/null | jq .mean_us)
  best_off=$(echo "$best_off $off" | tr ' ' '\n' | grep . | sort -g | head -1)
  best_on=$(echo "$best_on $on" | tr ' ' '\n' | grep . | sort -g | head -1)
done
pct=$(echo "$best_on $best_off" | awk '{printf "%+.1f", ($1 - $2) * 100 / $2}')
echo "tracing to a dead endpoint: $best_on us vs off: $best_off us ($pct%)"
{
  echo
  echo "Tracing against a dead OTLP endpoint (TRACE_ENABLED=1, TRACE_ENDPOINT=127.0.0.1:1) vs off,"
  echo "sequential10, best mean of 7 interleaved rounds (target: within 5%):"
  echo
  echo "| tracing | mean |"
  echo "|---|---|"
  echo "| off | $best_off µs |"
  echo "| on, dead endpoint | $best_on µs ($pct%) |"
} >> "$tmp"

# ---- serve under load: wrk, POST /v1/run of a one-step echo pipeline (tests/bench_serve.sh) ----
# The control-plane benchmark leaves dirty pages behind: write them out first, so their
# writeback does not overlap the latency measurement.
sync
sleep 2
sv=$(BENCH_SERVE_SECONDS=${BENCH_SERVE_SECONDS:-60} sh "$SRCDIR/tests/bench_serve.sh" "$FLUXROUTE" "$SRCDIR")
echo "$sv"
if echo "$sv" | jq -e '.requests_per_sec' >/dev/null 2>&1; then
  {
    echo
    echo "\`fluxroute serve\` under wrk (2 threads, $(echo "$sv" | jq .connections) connections, $(echo "$sv" | jq .seconds) s, on the same"
    echo "2 cores as the server): POST /v1/run of a one-step echo pipeline, API-key auth (sha256"
    echo "keys), audit log on with batched fsync, default retention, default request threads (one"
    echo "per core: 2); targets: ≥ 10,000 req/s,"
    echo "p99 ≤ 5 ms at 64 connections, idle RSS ≤ 20 MB, no growth):"
    echo
    echo "| req/s | p50 | p99 | non-2xx | overhead header p50 / p90 / p99 | RSS idle / after warm-up / end | RSS every 5 s under load: min-max |"
    echo "|---|---|---|---|---|---|---|"
    echo "$sv" | jq -r '"| \(.requests_per_sec) | \(.p50_us) µs | \(.p99_us) µs | \(.non_2xx) | \(.overhead_us.p50) / \(.overhead_us.p90) / \(.overhead_us.p99) µs | \(.rss_kb.idle) / \(.rss_kb.after_warmup) / \(.rss_kb.end) kB | \(.rss_kb.every_5s | if length > 0 then "\(min)-\(max) kB (\(length) samples)" else "-" end) |"'
  } >> "$tmp"
fi

# ---- the OpenAI-compatible gateway (issue 27): what it adds per request (tests/bench_gateway.sh) ----
gw=$(sh "$SRCDIR/tests/bench_gateway.sh" "$FLUXROUTE" "$SRCDIR" "$BUILDDIR" 2>/dev/null) || gw='{}'
echo "gateway: $gw"
{
  echo
  echo "The OpenAI-compatible gateway (issue 27): one chat completion sent to tests/fake_vendor"
  echo "directly, and through \`fluxroute serve\`'s POST /v1/chat/completions (a targets route, the"
  echo "openai plugin, the same fake vendor answering at once), by tests/bench_gateway_load"
  echo "(one keep-alive connection per client), all on the same 2 cores; direct and gateway"
  echo "rounds alternate, the median round is shown.  Streamed: time to the first token.  Targets:"
  echo "≤ 30 µs added at p50, ≤ 1 ms added at p99 at concurrency 64.  Anchors, published: Bifrost"
  echo "adds 11 µs mean at 5k RPS; in one third-party benchmark LiteLLM's Rust gateway adds"
  echo "0.33 ms p99 at concurrency 16."
  echo
  echo "| concurrency | answer | direct p50 / p99 | gateway p50 / p99 | added p50 / p99 | gateway req/s |"
  echo "|---|---|---|---|---|---|"
  echo "$gw" | jq -r 'if .rows then .rows[] |
    "| \(.concurrency) | \(if .stream then "streamed (first token)" else "whole" end) | \(.direct.p50_us) / \(.direct.p99_us) µs | \(.gateway.p50_us) / \(.gateway.p99_us) µs | \(.added_p50_us) / \(.added_p99_us) µs | \(.gateway.rps) |"
    else "| - | bench_gateway.sh failed | | | | |" end'
  echo
  echo "The floors on the same machine: serve's own GET /healthz (one HTTP hop, no work); the"
  echo "smallest event-driven pass-through made of serve's libraries (tests/bench_proxy_floor: an"
  echo "epoll loop per thread driving libmicrohttpd and libcurl's multi interface, 2 threads, no"
  echo "work per request); and a no-op reverse proxy (nginx, one worker, keep-alive upstream, when"
  echo "installed), both in front of the same vendor, whole answers:"
  echo
  echo "| concurrency | GET /healthz p50 / p99 | event-driven floor adds p50 / p99 | nginx adds p50 / p99 |"
  echo "|---|---|---|---|"
  echo "$gw" | jq -r 'def added($a): if $a then "\($a.added_p50_us) / \($a.added_p99_us) µs" else "skipped" end;
    if .healthz_floor then .healthz_floor[] as $f |
    (.event_floor.rows // [] | map(select(.concurrency == $f.concurrency)) | .[0]) as $e |
    (.proxy_anchor.rows // [] | map(select(.concurrency == $f.concurrency)) | .[0]) as $a |
    "| \($f.concurrency) | \($f.p50_us) / \($f.p99_us) µs | \(added($e)) | \(added($a)) |"
    else "| - | bench_gateway.sh failed | | |" end'
} >> "$tmp"

# ---- limit checks (issue 26): what they add per request ------------------------------------
# memory: tests/test_quota times admission + leave on one tenant and key with limits; redis:
# tests/bench_limits_redis.sh counts the scripts Redis ran per run (INFO commandstats) and
# times sequential runs of a limited key against an unlimited one on one serve.
[ -x "$BUILDDIR/tests/test_quota" ] || make -s -C "$BUILDDIR" tests/test_quota
ns=$("$BUILDDIR/tests/test_quota" | sed -n 's/.*limit checks, memory: \([0-9]*\) ns.*/\1/p')
echo "limit checks, memory: ${ns:-?} ns per admission + leave"
rl=$(sh "$SRCDIR/tests/bench_limits_redis.sh" "$FLUXROUTE" "$SRCDIR" 2>/dev/null) || rl='{}'
echo "limit checks, redis: $(echo "$rl" | jq -c .)"
redis_row=$(echo "$rl" | jq -r 'if .skipped then "| redis | skipped: \(.skipped) | |" elif .runs then
  "| redis | \(.round_trips_per_run.admission_and_end) round trips (ADMIT, and LEAVE when the run ends); \(.mean_us.added) µs added per run with one provider call (\(.mean_us.limited) vs \(.mean_us.unlimited) µs, sequential, loopback Redis) | \(.round_trips_per_run.per_provider_call) round trips (RESERVE, SETTLE); Redis spends \(.redis_us_per_script) µs per script |"
  else "| redis | bench_limits_redis.sh failed | |" end')
{
  echo
  echo "Tenant and key limits (issue 26; targets: memory ≤ 5 µs per request, redis ≤ 1 round trip"
  echo "at admission and ≤ 2 per provider call):"
  echo
  echo "| state | admission + end of run | per provider call |"
  echo "|---|---|---|"
  echo "| memory | ${ns:-?} ns (sliding log + runs in flight, one lock) | one lock for the reservation, one for the settlement |"
  echo "$redis_row"
} >> "$tmp"

# Scale-out with --state redis (issue 25; docs/scaling.md).
st=$(BENCH_STATE_SECONDS=${BENCH_STATE_SECONDS:-5} sh "$SRCDIR/tests/bench_state.sh" "$FLUXROUTE" "$SRCDIR" "$BUILDDIR")
echo "$st"
{
  echo
  echo "Replicas sharing state (\`--state redis\`, issue 25): a redis-server with appendonly yes and"
  echo "appendfsync always on the same 2 cores as the replicas, wrk and the clients (so more"
  echo "replicas share the cores, they do not add any).  Targets: a sync run ≤ 1 round trip more"
  echo "than memory; an async run ≤ 6 round trips end to end; a breaker opened on one replica seen"
  echo "on every other within 100 ms; a cancel within 1 s.  The capacity model is docs/scaling.md."
  echo
  echo "| what | state | runs | figure | Redis |"
  echo "|---|---|---|---|---|"
  echo "$st" | grep '^|'
  echo
  echo "$st" | sed -n 's/^# breakers: /- shared breakers (tests\/state\/test_breaker_redis): /p'
} >> "$tmp"

# The web console's first load (issue 28), in chromium (tests/bench_console.sh); with
# FLUXROUTE_BEFORE (another build's fluxroute) both, alternating.
cs=$(sh "$SRCDIR/tests/bench_console.sh" "$FLUXROUTE" "$SRCDIR") || cs='{"skipped": "bench_console.sh failed"}'
echo "console: $cs"
{
  echo
  echo "The web console's first load (issue 28; target: under 100 ms from a local server):"
  echo "headless chromium, a new context per load (empty cache, as a first-time user), the key"
  echo "already in sessionStorage; from the navigation's start to the load event and to the runs"
  echo "page drawn with its rows (tests/bench_console.sh, $(echo "$cs" | jq -r '.samples // 0') loads after 2 warm-up ones;"
  echo "load average $(cut -d' ' -f1 /proc/loadavg) when it ended).  Yardsticks in the same browser: /healthz"
  echo "after the page in its context, /healthz and /ui/icon.svg (the console's headers, whose"
  echo "Cross-Origin-Opener-Policy gives the page a new renderer process) as a new context's first page:"
  echo
  echo "| build | page bytes | load event p50 / p90 / p99 | runs drawn p50 / p90 / p99 | /healthz after | /healthz first | icon.svg first |"
  echo "|---|---|---|---|---|---|---|"
  echo "$cs" | jq -r 'def t(x): "\(x.p50) / \(x.p90) / \(x.p99) ms";
    def row(n; g): "| \(n) | \(if n == "this" then .page_bytes else "" end) | \(t(g.load_ms)) | \(t(g.ready_ms)) | \(g.healthz_load_ms.p50) ms | \(g.healthz_first_load_ms.p50) ms | \(g.icon_first_load_ms.p50) ms |";
    if .skipped then "| skipped: \(.skipped) | | | | | | |" else
    row("this"; .), (if .before then row("before (FLUXROUTE_BEFORE)"; .before) else empty end) end'
} >> "$tmp"

# Durable runs: the journal's cost per --journal-sync setting (tests/bench_journal.sh).
jr=$(sh "$SRCDIR/tests/bench_journal.sh" "$FLUXROUTE" "$SRCDIR" "$BUILDDIR")
echo "$jr"
{
  echo
  echo "Durable runs (\`run --journal FILE\`, \`worker --journal\`, issue 30): each run journaled to a new file or Redis stream, by"
  echo "--journal-sync setting, against no journal.  sequential10 (echo) shows the journal's own"
  echo "cost per step; ai_chain10 against fake_vendor answering after 20 ms the share of a real"
  echo "chain (target: \`step\` at most 2% over no journal)."
  echo
  echo "| manifest | backend | --journal-sync | p50 us/run | mean us/run | us/step over none (p50) | p50 over none |"
  echo "|---|---|---|---|---|---|---|"
  echo "$jr" | grep '^|'
} >> "$tmp"

# Resume latency (tests/bench_resume.sh): 100 chained llm steps, 90 of them journaled.
rs=$(sh "$SRCDIR/tests/bench_resume.sh" "$FLUXROUTE" "$SRCDIR" "$BUILDDIR") || rs='{}'
echo "resume: $(echo "$rs" | jq -c .)"
{
  echo
  echo "Resume latency (issue 30; target: the resumed run's time is its live part's, the recorded"
  echo "prefix replaying at replay speed): a run of 100 chained llm steps against fake_vendor"
  echo "answering after 20 ms, its journal cut after the 90th step's outcome, finished by"
  echo "\`fluxroute resume\` (whole processes, median of $(echo "$rs" | jq -r '.rounds // "?"') rounds; tests/bench_resume.sh):"
  echo
  echo "| what | time |"
  echo "|---|---|"
  echo "$rs" | jq -r 'if .resume_ms then
    "| the run of 100 steps, uninterrupted (journaled) | \(.full_run_100_ms) ms |",
    "| `fluxroute resume` of its journal cut after step 90 (\(.journal_bytes) bytes) | **\(.resume_ms) ms** |",
    "| `fluxroute replay` of a recorded run of the 90 steps | \(.replay_prefix_90_ms) ms |",
    "| a fresh run of the 10 live steps, journaled (`run --journal`, sync step) | \(.fresh_run_10_ms) ms |",
    "| the same, not journaled | \(.fresh_run_10_unjournaled_ms) ms |",
    "| process start-up (`fluxroute version`) | \(.process_start_ms) ms |",
    "| replay of the prefix + the live part - one start-up (the expected resume) | \(.expected_ms) ms |",
    "| resume over the expected | \(.over_expected_ms) ms |"
    else "| bench_resume.sh failed | |" end'
} >> "$tmp"

# Keep the hand-written analysis that follows the generated figures.
if [ -f "$OUT" ] && grep -q '^## Notes' "$OUT"; then
  echo >> "$tmp"
  sed -n '/^## Notes/,$p' "$OUT" >> "$tmp"
fi
mv "$tmp" "$OUT"
trap - EXIT
echo "wrote $OUT"
