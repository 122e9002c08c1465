#!/bin/sh
# The OpenAI-compatible gateway (issue 27) through the official `openai` npm client:
# tests/gateway/gateway.mjs starts tests/fake_vendor, a vendor that always fails and
# serve with a routes file, and covers plain and streamed completions, tool calls over two
# turns on the three vendors, fallback, a mid-stream failure, 401/403/404/400/429, the
# models list, a pipeline route, SIGHUP and the offline replay of gateway traces; the graph
# stored with a gateway run follows its pipeline's manifest.
. "${FR_SRCDIR:-.}/tests/lib.sh"
NODE_MODULES="$FR_SRCDIR/tests/node_modules"
if ! command -v node >/dev/null 2>&1 || [ ! -d "$NODE_MODULES/openai" ]; then
  echo "not ok - the gateway test needs node and tests/node_modules (run: npm ci --prefix tests)"
  exit 1
fi
mkdir -p "$TMP/m"

# ---- the routes file: every error names the file, the place and the field ----------------
printf 'keys: []\n' >"$TMP/k.yaml"
printf 'providers:\n  - {id: openai, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:9/v1", api_key_env: ""}}\n' \
  >"$TMP/p.yaml"
bad_routes() { # NAME YAML EXPECTED-STDERR
  printf '%s\n' "$2" >"$TMP/r.yaml"
  fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/k.yaml" \
    --providers "$TMP/p.yaml" --routes "$TMP/r.yaml"
  expect_rc "routes file: $1" 2
  expect_err "routes file: $1" "$3"
}
bad_routes "unknown field" 'routes:
  - {name: a, targets: [{provider: openai}], retries: 3}' 'r.yaml:2:46: unknown field "retries" in a route'
bad_routes "unknown provider" 'routes:
  - {name: a, targets: [{provider: nope}]}' 'r.yaml:2:36: route "a": provider "nope" is not one of the server'"'"'s (--providers FILE)'
bad_routes "targets and pipeline" 'routes:
  - {name: a, targets: [{provider: openai}], pipeline: x.yaml}' 'r.yaml:2:5: route "a": give either targets or pipeline'
bad_routes "duplicate name" 'routes:
  - {name: a, targets: [{provider: openai}]}
  - {name: a, targets: [{provider: openai}]}' 'r.yaml:3:12: route "a" is defined twice'
bad_routes "a retry a manifest refuses" 'routes:
  - {name: a, targets: [{provider: openai}], retry: {max_attempts: 0}}' 'route "a": retry.max_attempts: must be between 1'
bad_routes "a bad timeout" 'routes:
  - {name: a, targets: [{provider: openai}], timeout: soon}' 'route "a": timeout: invalid duration "soon"'
printf 'router: {namespace: acme}\nagents: [{id: a, plugin: echo}]\npipeline: [{step: a}, {step: b, agent: a}]\n' \
  >"$TMP/m/two-sinks.yaml"
bad_routes "a pipeline with two sink steps" 'routes:
  - {name: p, pipeline: two-sinks.yaml}' 'r.yaml:2:25: route "p": manifest "two-sinks.yaml" has 2 sink steps; a pipeline route needs exactly one'
bad_routes "a pipeline not in the manifest directory" 'routes:
  - {name: p, pipeline: absent.yaml}' 'route "p": no manifest "absent.yaml" in the manifest directory'
rm -f "$TMP/r.yaml" "$TMP/m/two-sinks.yaml"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/k.yaml" --routes "$TMP/r.yaml"
expect_rc "routes file: missing" 2
expect_err "routes file: missing" "--routes $TMP/r.yaml: No such file or directory"
# ---- usage of gateway requests reaches the control plane, billed per tenant -----------------
. "$FR_SRCDIR/tests/serve_lib.sh"
ADMIN=gw-cp-admin-key-1
. "$FR_SRCDIR/tests/cp_lib.sh"
trap 'stop_serve; stop_cp; rm -rf "$TMP"' EXIT
start_cp
cp_req POST /v1/tenants '{"id": "acme"}'
cp_req POST /v1/tenants/acme/keys '{"role": "operator"}'
CKEY=$(jq -r .key "$TMP/out")
cp_req POST /v1/service-keys
CONTROLPLANE_SERVICE_KEY=$(jq -r .key "$TMP/out")
CONTROLPLANE_SPOOL="$TMP/usage.spool"
export CONTROLPLANE_SERVICE_KEY CONTROLPLANE_SPOOL
printf 'providers:\n  - {id: local, plugin: mock, config: {reply: ok}}\n' >"$TMP/pm.yaml"
printf 'routes:\n  - {name: cheap, targets: [{provider: local, model: mock-9}]}\n' >"$TMP/rm.yaml"
start_serve --manifest-dir "$TMP/m" --providers "$TMP/pm.yaml" --routes "$TMP/rm.yaml" \
  --controlplane "$CP_URL" || exit 1
req POST /v1/chat/completions \
  '{"model": "cheap", "messages": [{"role": "user", "content": "one two three"}]}' \
  -H "Authorization: Bearer $CKEY"
expect_code "control plane: a gateway completion with the control plane's key" 200
expect_jq "control plane: the mock answered" '.choices[0].message.content == "ok"'
want_in=$(jq -r .usage.prompt_tokens "$TMP/out")
want_out=$(jq -r .usage.completion_tokens "$TMP/out")
got=""
for _ in $(seq 1 100); do # the usage goes out in the background: 10 s at most
  cp_req GET "/v1/usage?tenant_id=acme"
  got=$(jq -r '"\(.runs) \(.input_tokens) \(.output_tokens)"' "$TMP/out")
  [ "$got" = "1 $want_in $want_out" ] && break
  sleep 0.1
done
if [ "$got" = "1 $want_in $want_out" ] && [ "$want_in" -gt 0 ]; then
  ok "control plane: the request's usage is billed to its tenant (runs, input, output: $got)"
else
  not_ok "control plane: the request's usage is billed to its tenant" "got $got, want 1 $want_in $want_out"
fi
stop_serve
stop_cp

# ---- a run's graph is its pipeline's, made once per pipeline: it follows the routes file
# (SIGHUP) and the manifest file when they change -------------------------------------------
GKEY=gw-graph-key-0123456789
printf 'keys:\n  - {id: g, sha256: %s, tenant: t, namespace: default, role: operator}\n' \
  "$(sha "$GKEY")" >"$TMP/kg.yaml"
printf 'agents: [{id: a, plugin: echo}]\npipeline: [{step: a}]\n' >"$TMP/m/one.yaml"
printf 'agents: [{id: a, plugin: echo}]\npipeline: [{step: a}, {step: b, agent: a, depends_on: [a]}]\n' \
  >"$TMP/m/two.yaml"
printf 'routes:\n  - {name: p, pipeline: one.yaml}\n' >"$TMP/rg.yaml"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/kg.yaml" --routes "$TMP/rg.yaml" || exit 1
# graph_steps: one completion of route p, then the step ids of its run's graph, in order.
graph_steps() {
  req POST /v1/chat/completions '{"model": "p", "messages": [{"role": "user", "content": "hi"}]}' \
    -H "Authorization: Bearer $GKEY"
  [ "$code" = 200 ] || { echo "completion: HTTP $code"; return; }
  local id
  id=$(sed -n 's/^X-FluxRoute-Run-Id: *\([0-9a-f-]*\).*/\1/ip' "$TMP/headers")
  req GET "/v1/runs/$id" "" -H "Authorization: Bearer $GKEY"
  jq -r '[.graph.nodes[].id] | join(",")' "$TMP/out"
}
# expect_graph NAME WANT: the graph of a new run is WANT within 10 s (a manifest file is
# looked at again after at most 1 s).
expect_graph() {
  local got=""
  for _ in $(seq 1 100); do
    got=$(graph_steps)
    [ "$got" = "$2" ] && break
    sleep 0.1
  done
  if [ "$got" = "$2" ]; then ok "graph: $1 ($got)"; else not_ok "graph: $1" "got $got, want $2"; fi
}
expect_graph "a pipeline route's run" "a"
expect_graph "the next run of the same pipeline" "a"
printf 'routes:\n  - {name: p, pipeline: two.yaml}\n' >"$TMP/rg.yaml"
kill -HUP "$SERVE_PID"
expect_graph "the route's manifest changed in the routes file (SIGHUP)" "a,b"
printf 'agents: [{id: a, plugin: echo}]\npipeline: [{step: a}, {step: b, agent: a, depends_on: [a]}, {step: c, agent: a, depends_on: [b]}]\n' \
  >"$TMP/m/two.yaml"
expect_graph "the manifest file changed" "a,b,c"
stop_serve
rm -f "$TMP/m/one.yaml" "$TMP/m/two.yaml"

# The .mjs resolves `openai` from its own folder upwards: tests/node_modules.
FAKE_VENDOR="$FR_BUILDDIR/tests/fake_vendor" TMP="$TMP" \
  timeout 170 node "$FR_SRCDIR/tests/gateway/gateway.mjs" </dev/null || failed=$((failed + 1))
finish
