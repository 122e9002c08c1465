#!/bin/sh
# serve under load (make bench): wrk against POST /v1/run of a one-step echo pipeline, with
# API-key auth (sha256 keys), the audit log on with batched fsync, default retention; one
# tenant may use every run slot (this measures the server, not the tenant's share).
# Prints one JSON object.  env: BENCH_SERVE_SECONDS (20), BENCH_SERVE_CONNECTIONS (64).
set -eu
FLUXROUTE=$1
SRCDIR=$2
SECS=${BENCH_SERVE_SECONDS:-20}
CONNS=${BENCH_SERVE_CONNECTIONS:-64}
command -v wrk >/dev/null || { echo '{"skipped": "wrk not installed (apt-get install wrk)"}'; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-serve.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/m"
cp "$SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
KEY=bench-key-0123456789
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" > "$TMP/keys.yaml"
AUDIT_LOG_PATH="$TMP/audit.log" AUDIT_FSYNC=batch "$FLUXROUTE" serve --addr 127.0.0.1:0 \
  --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --max-runs 256 \
  --max-runs-per-tenant 256 >"$TMP/out" 2>"$TMP/err" &
pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^listening on //p' "$TMP/out"); [ -n "$url" ] && break; sleep 0.05
done
[ -n "$url" ] || { cat "$TMP/err" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
idle_rss=$(rss)
cat > "$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"manifest": "echo.yaml", "input": {"n": 1}}'
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) overheads = {} ; n = 0 end
function response(status, headers, body)
  local o = tonumber(headers["X-FluxRoute-Overhead-Us"] or headers["x-fluxroute-overhead-us"])
  if o and n < 200000 then n = n + 1; overheads[n] = o end
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local o = t:get("overheads")
    for i = 1, #o do all[#all + 1] = o[i] end
  end
  table.sort(all)
  local function q(p) if #all == 0 then return 0 end return all[math.max(1, math.floor(#all * p))] end
  io.write(string.format("OVERHEAD %d %d %d %d\n", #all, q(0.5), q(0.9), q(0.99)))
  io.write(string.format("LAT %d %d %d\n", latency:percentile(50), latency:percentile(99), summary.requests))
  io.write(string.format("ERRS %d %d\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
wrk -t2 -c"$CONNS" -d3s -s "$TMP/post.lua" "$url/v1/run" >/dev/null 2>&1 || true
warm_rss=$(rss)
wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$TMP/post.lua" --latency "$url/v1/run" > "$TMP/wrk.txt" 2>&1 &
wrk_pid=$!
# RSS every 5 s while the load runs: growth shows as a trend, not as two points.
samples=""
while sleep 5 && kill -0 "$wrk_pid" 2>/dev/null; do samples="$samples${samples:+, }$(rss)"; done
wait "$wrk_pid"
end_rss=$(rss)
rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
set -- $(grep '^LAT ' "$TMP/wrk.txt")
p50=$2; p99=$3; total=$4
set -- $(grep '^OVERHEAD ' "$TMP/wrk.txt")
ovn=$2; ov50=$3; ov90=$4; ov99=$5
set -- $(grep '^ERRS ' "$TMP/wrk.txt")
bad_status=$2; sock_errors=$3
printf '{"seconds": %s, "connections": %s, "requests": %s, "requests_per_sec": %s, "p50_us": %s, "p99_us": %s, "non_2xx": %s, "socket_errors": %s, "overhead_us": {"samples": %s, "p50": %s, "p90": %s, "p99": %s}, "rss_kb": {"idle": %s, "after_warmup": %s, "end": %s, "every_5s": [%s]}}\n' \
  "$SECS" "$CONNS" "$total" "$rps" "$p50" "$p99" "$bad_status" "$sock_errors" "$ovn" "$ov50" "$ov90" "$ov99" "$idle_rss" "$warm_rss" "$end_rss" "$samples"
