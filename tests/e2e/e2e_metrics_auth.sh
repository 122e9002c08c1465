#!/bin/sh
# serve's /metrics (issue 22): on serve's address only keys with the admin or metrics role
# read it (401 without a key, 403 for viewer and operator), and a metrics key can do
# nothing else; --metrics-addr serves /metrics, /healthz and /readyz without a key and
# nothing more; promtool accepts both expositions; label values tenants choose (agent and
# step ids) fold into "other" past --metrics-series-per-namespace, so hundreds of runs
# with fresh ids keep /metrics small.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
S="$FR_SRCDIR/tests/data/serve"
mkdir -p "$TMP/m"
cp "$S"/echo.yaml "$TMP/m/"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha op-key), tenant: acme, namespace: acme, role: operator}
  - {id: acme-viewer, sha256: $(sha viewer-key), tenant: acme, namespace: acme, role: viewer}
  - {id: acme-admin, sha256: $(sha admin-key), tenant: acme, namespace: acme, role: admin}
  - {id: prometheus, sha256: $(sha metrics-key), tenant: ops, namespace: ops, role: metrics}
  - {id: beta-op, sha256: $(sha beta-key), tenant: beta, namespace: beta, role: operator}
clients:
  - {cn: scraper, tenant: ops, namespace: ops, role: Metrics}
YAML
OP="Authorization: Bearer op-key"
MK="Authorization: Bearer metrics-key"
# The budget this test holds: 60 series per namespace (the default is 256).
CAP=60
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --metrics-addr 127.0.0.1:0 \
  --metrics-series-per-namespace $CAP || exit 1

promcheck() { # NAME FILE
  if ! command -v promtool >/dev/null 2>&1; then
    not_ok "$1: promtool check metrics" "promtool not installed (Debian package prometheus; ./bootstrap.sh installs it)"
  elif promtool check metrics <"$2" >"$TMP/promtool.txt" 2>&1; then
    ok "$1: promtool check metrics"
  else
    not_ok "$1: promtool check metrics" "$(head -5 "$TMP/promtool.txt")"
  fi
}

# ---- /metrics on serve's address ----------------------------------------------------------
req GET /metrics
expect_code "no key" 401
expect_jq "no key" '.error.code == "unauthorized"'
check "no key: Bearer challenge" grep -qi '^WWW-Authenticate: Bearer realm="fluxroute"' "$TMP/headers"
check "no key: no metric leaks" sh -c "! grep -q fluxroute_ '$TMP/out'"
req GET /metrics "" -H "Authorization: Bearer nope"
expect_code "unknown key" 401
req GET /metrics "" -H "Authorization: Bearer viewer-key"
expect_code "viewer" 403
expect_jq "viewer" '.error.code == "forbidden" and (.error.message | test("admin or metrics"))'
req GET /metrics "" -H "$OP"
expect_code "operator" 403
check "operator: no metric leaks" sh -c "! grep -q fluxroute_ '$TMP/out'"
req GET /metrics "" -H "Authorization: Bearer admin-key"
expect_code "admin" 200
check "admin: the exposition" grep -q '^# TYPE fluxroute_runs_total counter' "$TMP/out"
req POST /metrics "" -H "Authorization: Bearer admin-key"
expect_code "admin: POST" 405
check "admin: POST: Allow" grep -qi '^Allow: GET, HEAD' "$TMP/headers"
req GET /metrics "" -H "$MK"
expect_code "metrics role" 200
check "metrics role: the exposition" grep -q '^# TYPE fluxroute_http_requests_total counter' "$TMP/out"
promcheck "serve's /metrics" "$TMP/out"

# A metrics key reads metrics and nothing else, not even which routes exist.
for r in "POST /v1/run" "POST /v1/validate" "POST /v1/replay" "GET /v1/runs/r-0123456789abcdef" \
  "DELETE /v1/runs/r-0123456789abcdef" "GET /v1/runs/r-0123456789abcdef/trace" "GET /v1/nope"; do
  req "${r% *}" "${r#* }" '{"manifest": "echo.yaml"}' -H "$MK"
  expect_code "metrics role: $r" 403
  expect_jq "metrics role: $r" '.error.code == "forbidden" and (.error.message | test("only read /metrics"))'
done
req POST /v1/run '{"manifest": "echo.yaml"}' -H "$OP"
expect_code "operator still runs" 200

# ---- the --metrics-addr listener -------------------------------------------------------------
case ${METRICS_URL:-} in
http://127.0.0.1:[0-9]*) ok "metrics listener: 'metrics listening on' line" ;;
*) not_ok "metrics listener: 'metrics listening on' line" "$(cat "$TMP/serve.out")" ;;
esac
check "metrics listener: printed after the listening line" sh -c \
  "sed -n 1p '$TMP/serve.out' | grep -q '^listening on ' && sed -n 2p '$TMP/serve.out' | grep -q '^metrics listening on '"
M=${METRICS_URL:-http://127.0.0.1:1}
mreq() { # METHOD PATH [CURL ARGS...]: sets $code, body in $TMP/out
  local method=$1 path=$2
  shift 2
  rm -f "$TMP/out"
  code=$(curl -s -o "$TMP/out" -D "$TMP/headers" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$M$path")
}
mreq GET /metrics
expect_code "metrics listener: /metrics without a key" 200
check "metrics listener: the exposition" grep -q '^fluxroute_runs_total{namespace="acme",status="succeeded"} 1$' "$TMP/out"
promcheck "metrics listener" "$TMP/out"
mreq GET /healthz
expect_code "metrics listener: /healthz" 200
mreq GET /readyz
expect_code "metrics listener: /readyz" 200
expect_jq "metrics listener: /readyz" '.status == "ready"'
mreq POST /v1/run -H "$OP" --data-binary '{"manifest": "echo.yaml"}'
expect_code "metrics listener: no /v1/run" 404
mreq GET /v1/runs/r-0123456789abcdef -H "$OP"
expect_code "metrics listener: no /v1/runs" 404
mreq GET /nope
expect_code "metrics listener: unknown path" 404
mreq POST /metrics --data-binary x
expect_code "metrics listener: POST /metrics" 405

# ---- label values tenants choose are bounded -------------------------------------------------
# 220 runs, each with 3 agents and steps of fresh ids: 660 agent ids, 1,320 series in
# fluxroute_step_attempts_total and fluxroute_step_duration_seconds without a bound.
RUNS=220
: >"$TMP/runs.cfg"
i=0
while [ $i -lt $RUNS ]; do
  a="agent-$i-with-a-rather-long-id-chosen-by-the-tenant"
  printf '{"manifest_yaml": "router: {namespace: acme}\\nagents: [{id: %s-1, plugin: echo}, {id: %s-2, plugin: echo}, {id: %s-3, plugin: echo}]\\npipeline: [{step: step-%s-1, agent: %s-1}, {step: step-%s-2, agent: %s-2}, {step: step-%s-3, agent: %s-3}]\\ninput: {n: %s}\\n"}' \
    "$a" "$a" "$a" $i "$a" $i "$a" $i "$a" $i >"$TMP/run-$i.json"
  [ $i = 0 ] || echo next >>"$TMP/runs.cfg"
  printf 'url = "%s/v1/run"\nheader = "%s"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
    "$SERVE_URL" "$OP" "$TMP/run-$i.json" >>"$TMP/runs.cfg"
  i=$((i + 1))
done
# Four at a time: concurrent runs race for the namespace's last series.
curl -s --max-time 120 --parallel --parallel-max 4 -K "$TMP/runs.cfg" >"$TMP/codes.txt" 2>&1
n200=$(grep -c '^200$' "$TMP/codes.txt")
if [ "$n200" = $RUNS ]; then ok "$RUNS runs with fresh agent and step ids"; else
  not_ok "$RUNS runs with fresh agent and step ids" "$n200 answered 200: $(sort "$TMP/codes.txt" | uniq -c | head -5)"; fi
# Another tenant's namespace keeps its own budget; an id over 64 bytes folds at once.
LONG=$(printf 'x%.0s' $(seq 1 70))
req POST /v1/run "{\"manifest_yaml\": \"router: {namespace: beta}\\nagents: [{id: beta-agent, plugin: echo}, {id: $LONG, plugin: echo}]\\npipeline: [{step: b, agent: beta-agent}, {step: l, agent: $LONG}]\\n\"}" \
  -H "Authorization: Bearer beta-key"
expect_code "beta runs after acme's budget is spent" 200
mreq GET /metrics
cp "$TMP/out" "$TMP/bounded.txt"
size=$(wc -c <"$TMP/bounded.txt")
# acme's 60 named series (half of them histograms of 20 lines), its folded ones and beta's
# few: under 128 KiB (about 95 KB); without the bound the same runs make about 2 MB.
if [ "$size" -lt 131072 ]; then ok "/metrics stays under 128 KiB ($size bytes)"; else
  not_ok "/metrics stays under 128 KiB" "$size bytes"; fi
check "folded series: agent=\"other\"" \
  grep -q '^fluxroute_step_attempts_total{namespace="acme",agent="other",status="succeeded",class="none"} [1-9]' "$TMP/bounded.txt"
check "folded series: a histogram" \
  grep -q '^fluxroute_step_duration_seconds_count{namespace="acme",agent="other",status="succeeded"} [1-9]' "$TMP/bounded.txt"
# The only metrics with an agent label here: the attempts counter and the duration
# histogram (one _count line per series).  acme spent its whole budget on named series.
series=$(grep -E '^(fluxroute_step_attempts_total|fluxroute_step_duration_seconds_count)\{namespace="acme",' "$TMP/bounded.txt" |
  grep -vc 'agent="other"')
if [ "$series" = $CAP ]; then ok "acme's named series: exactly the cap ($CAP)"; else
  not_ok "acme's named series: exactly the cap ($CAP)" "$series series"; fi
check "beta keeps its own agent label" \
  grep -q '^fluxroute_step_attempts_total{namespace="beta",agent="beta-agent",status="succeeded",class="none"} 1$' "$TMP/bounded.txt"
check "an agent id over 64 bytes reads \"other\"" \
  grep -q '^fluxroute_step_attempts_total{namespace="beta",agent="other",status="succeeded",class="none"} 1$' "$TMP/bounded.txt"
check "an agent id over 64 bytes never appears" sh -c "! grep -q '$LONG' '$TMP/bounded.txt'"
# Folding loses no count: every attempt of acme is in some series.
attempts=$(awk '/^fluxroute_step_attempts_total\{namespace="acme",/ { n += $2 } END { print n + 0 }' "$TMP/bounded.txt")
if [ "$attempts" = $((RUNS * 3 + 1)) ]; then ok "no attempt lost to folding ($attempts)"; else
  not_ok "no attempt lost to folding" "counted $attempts, want $((RUNS * 3 + 1))"; fi
promcheck "bounded exposition" "$TMP/bounded.txt"
req GET /metrics "" -H "$MK"
check "serve's address: the same bounded exposition" grep -q 'agent="other"' "$TMP/out"
stop_serve

# ---- configuration errors --------------------------------------------------------------------
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --metrics-addr nope
expect_rc "bad --metrics-addr" 2
expect_err "bad --metrics-addr" "--metrics-addr nope"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --metrics-series-per-namespace -3
expect_rc "bad --metrics-series-per-namespace" 2
expect_err "bad --metrics-series-per-namespace" "--metrics-series-per-namespace -3"
printf 'keys:\n  - {id: x, sha256: %s, tenant: tt, namespace: tt, role: scraper}\n' "$(sha x)" >"$TMP/badkeys.yaml"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/badkeys.yaml"
expect_rc "unknown key role" 2
expect_err "unknown key role" "expected viewer, operator, admin or metrics"
# A manifest cannot grant the metrics role an action.
printf 'router: {namespace: acme, rbac: {run_roles: [metrics]}}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' >"$TMP/rbac.yaml"
fr validate "$TMP/rbac.yaml"
expect_rc "manifest rbac: metrics is no tenant role" 2
expect_err "manifest rbac: metrics is no tenant role" "unknown role"

# ROUTER_METRICS_ADDR; a port in use is a clear start-up failure.
export ROUTER_METRICS_ADDR=127.0.0.1:0
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1
unset ROUTER_METRICS_ADDR
case ${METRICS_URL:-} in
http://127.0.0.1:[0-9]*) ok "ROUTER_METRICS_ADDR: metrics listener" ;;
*) not_ok "ROUTER_METRICS_ADDR: metrics listener" "$(cat "$TMP/serve.out")" ;;
esac
busy=${METRICS_URL#http://}
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --metrics-addr "$busy"
expect_rc "--metrics-addr in use" 1
expect_err "--metrics-addr in use" "cannot listen on --metrics-addr $busy"
stop_serve
finish
