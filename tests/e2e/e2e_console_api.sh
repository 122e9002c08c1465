#!/bin/sh
# The web console's API (issue 28) against a real `fluxroute serve` (and a real control
# plane for GET /v1/usage), 127.0.0.1 only:
#   - GET /v1/manifests[/{name}]: the caller's namespace only (another namespace's file is
#     neither listed nor shown: the same 404 as a missing one), text, diagnostics at line
#     and column, the graph by dependency level; bad names, methods;
#   - report additions: attempts' started_us place retries, backoff and fallbacks in order;
#     the SSE stream says step_started before each step's end; GET /v1/runs/{id} has the
#     run's manifest, its graph and its input (the request's, or the manifest's own);
#   - POST /v1/debug: run ids and uploaded traces, identical runs whose started_us differ are
#     identical, a different input is found, --all lists every divergence; bad input is a
#     400 naming the field; another tenant's run is 404; the body is bounded;
#   - GET /v1/whoami: each key's own tenant, namespace, role and id, and what its role may
#     do (a viewer may not run, an operator may, an admin may administer); no key 401, a
#     metrics key 403, another method 405;
#   - GET /v1/usage: 503 without a control plane; with one, each tenant sees its own usage
#     and invoice, asked with its own key; a bad period is a 400; the control plane gone,
#     503 controlplane_unavailable;
#   - with --state redis (when redis-server is installed): a run's input is kept in its
#     shared record, sync and queued runs alike, and another replica answers with it.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/cp_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
trap 'stop_serve; stop_cp; stop_redis; rm -rf "$TMP"' EXIT

mkdir -p "$TMP/m"
cat >"$TMP/m/dag.yaml" <<'YAML'
router: {namespace: acme}
agents:
  - {id: e, plugin: echo}
  - {id: flaky, plugin: chaos, config: {fail_attempts: 2}, retry: {max_attempts: 3, backoff: constant, base_delay: 5ms}}
  - {id: broken, plugin: chaos, config: {fail_attempts: 9}, retry: {max_attempts: 2, backoff: constant, base_delay: 5ms}, fallback: [e]}
pipeline:
  - {step: a, agent: e}
  - {step: b, agent: flaky, depends_on: [a]}
  - {step: c, agent: broken, depends_on: [a]}
  - {step: d, agent: e, depends_on: [b, c]}
input: {default: true}
YAML
# Line 3, after the column of "zz": an unknown agent.
printf 'router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: x, agent: e}, {step: y, agent: zz}]\n' >"$TMP/m/bad.yaml"
printf 'router: {namespace: beta}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: x, agent: e}]\n' >"$TMP/m/beta.yaml"
printf 'not: [yaml' >"$TMP/m/broken.yaml"
echo "secret" >"$TMP/m/creds.env"
cat >"$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha acme-op-key), tenant: acme, namespace: acme, role: operator}
  - {id: acme-viewer, sha256: $(sha acme-viewer-key), tenant: acme, namespace: acme, role: viewer}
  - {id: beta-op, sha256: $(sha beta-op-key), tenant: beta, namespace: beta, role: operator}
  - {id: acme-admin, sha256: $(sha acme-admin-key), tenant: acme, namespace: acme, role: admin}
  - {id: scrape, sha256: $(sha scrape-key), tenant: ops, namespace: ops, role: metrics}
YAML
OP="Authorization: Bearer acme-op-key"
VIEWER="Authorization: Bearer acme-viewer-key"
BETA="Authorization: Bearer beta-op-key"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --max-body 65536 || exit 1

# ---- whoami -----------------------------------------------------------------------------------
req GET /v1/whoami '' -H "$OP"
expect_code "whoami (operator)" 200
expect_jq "whoami: the operator key's identity, and it may run" \
  '. == {"key_id": "acme-op", "tenant": "acme", "namespace": "acme", "role": "operator", "via": "key", "may": {"run": true, "validate": true, "replay": true, "admin": false}}'
req GET /v1/whoami '' -H "$VIEWER"
expect_code "whoami (viewer)" 200
expect_jq "whoami: a viewer may not run (the console shows it no run button)" \
  '.key_id == "acme-viewer" and .role == "viewer" and .may.run == false and .may.admin == false'
req POST /v1/run '{"manifest": "dag.yaml"}' -H "$VIEWER"
expect_code "... and the API refuses its run, as whoami says" 403
req GET /v1/whoami '' -H "$BETA"
expect_jq "whoami: another tenant's key sees its own tenant only" \
  '.key_id == "beta-op" and .tenant == "beta" and .namespace == "beta" and .may.run == true'
req GET /v1/whoami '' -H "Authorization: Bearer acme-admin-key"
expect_jq "whoami: an admin may administer" '.role == "admin" and .may.admin == true and .may.run == true'
req GET /v1/whoami ''
expect_code "whoami without a key" 401
req GET /v1/whoami '' -H "Authorization: Bearer not-a-key"
expect_code "whoami with an unknown key" 401
req GET /v1/whoami '' -H "Authorization: Bearer scrape-key"
expect_code "whoami with a metrics key (it may only scrape)" 403
req DELETE /v1/whoami '' -H "$OP"
expect_code "whoami: DELETE" 405
check "whoami: 405 says Allow: GET" grep -qi '^Allow: GET' "$TMP/headers"

# ---- manifests ------------------------------------------------------------------------------
req GET /v1/manifests '' -H "$VIEWER"
expect_code "list (viewer)" 200
expect_jq "list: acme's files only, by name" '.namespace == "acme" and ([.manifests[].name] == ["bad.yaml", "dag.yaml"])'
expect_jq "list: validity, diagnostics and steps" '.manifests == [{"name": "bad.yaml", "valid": false, "errors": 1, "steps": 0}, {"name": "dag.yaml", "valid": true, "errors": 0, "steps": 4}]'
req GET /v1/manifests '' -H "$BETA"
expect_code "list (beta)" 200
expect_jq "list: beta sees only its own" '[.manifests[].name] == ["beta.yaml"]'
req GET /v1/manifests
expect_code "list without a key" 401

req GET /v1/manifests/dag.yaml '' -H "$VIEWER"
expect_code "dag.yaml" 200
expect_jq "dag.yaml: its text, whole" ".text == $(jq -Rs . "$TMP/m/dag.yaml")"
expect_jq "dag.yaml: valid" '.valid == true and .errors == [] and .name == "dag.yaml" and .namespace == "acme"'
expect_jq "dag.yaml: nodes in order with their levels" '[.graph.nodes[] | [.id, .agent, .level]] == [["a", "e", 0], ["b", "flaky", 1], ["c", "broken", 1], ["d", "e", 2]]'
expect_jq "dag.yaml: depends_on" '[.graph.nodes[].depends_on] == [[], ["a"], ["a"], ["b", "c"]]'
expect_jq "dag.yaml: edges" '.graph.edges == [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}, {"from": "b", "to": "d"}, {"from": "c", "to": "d"}]'
cp "$TMP/out" "$TMP/dag_manifest.json"
req GET /v1/manifests/bad.yaml '' -H "$OP"
expect_code "bad.yaml" 200
expect_jq "bad.yaml: the diagnostic at its line and column" '.valid == false and .errors == [{"line": 3, "col": 50, "message": "step \"y\": unknown agent \"zz\""}]'
expect_jq "bad.yaml: no graph" '.graph == {"nodes": [], "edges": []}'
req GET /v1/manifests/beta.yaml '' -H "$OP"
expect_code "another namespace's manifest" 404
cp "$TMP/out" "$TMP/other.json"
req GET /v1/manifests/nope.yaml '' -H "$OP"
expect_code "a missing manifest" 404
check "another namespace's manifest is answered as a missing one" sh -c \
  "jq -e '.error.code == \"manifest_not_found\"' '$TMP/out' && [ \"\$(jq -c '.error.message | sub(\"nope\"; \"beta\")' '$TMP/out')\" = \"\$(jq -c .error.message '$TMP/other.json')\" ]"
check "another namespace's text is not in the answer" sh -c "! grep -q 'namespace: beta' '$TMP/other.json'"
req GET /v1/manifests/broken.yaml '' -H "$OP"
expect_code "a file of no readable namespace" 404
req GET /v1/manifests/creds.env '' -H "$OP"
expect_code "not a manifest name" 400
expect_jq "not a manifest name: bad_manifest_name naming the field" '.error.code == "bad_manifest_name" and .error.field == "name"'
req GET '/v1/manifests/..%2Fkeys.yaml' '' -H "$OP"
expect_code "a path out of the directory" 400
req POST /v1/manifests/dag.yaml '{}' -H "$OP"
expect_code "POST a manifest" 405
check "405 says Allow: GET" grep -qi '^Allow: GET' "$TMP/headers"
req DELETE /v1/manifests '' -H "$OP"
expect_code "DELETE the list" 405

# ---- report additions -------------------------------------------------------------------------
req POST /v1/run '{"manifest": "dag.yaml", "input": {"q": 1}, "trace": true, "seed": 7}' -H "$OP"
expect_code "a run" 200
cp "$TMP/out" "$TMP/r1.json"
R1=$(jq -r .run_id "$TMP/out")
expect_jq "b: 3 attempts, c: 2 and its fallback" '[.steps[] | [.step, (.attempts | length)]] == [["a", 1], ["b", 3], ["c", 3], ["d", 1]]'
expect_jq "every attempt has started_us" '[.steps[].attempts[] | .started_us | type] | all(. == "number")'
# Each attempt starts after the one before it ended and its own backoff.
expect_jq "attempts in order, backoff gaps included" '[.steps[].attempts | . as $a | range(1; length) | $a[.].started_us >= $a[. - 1].started_us + $a[. - 1].duration_us + $a[.].backoff_us] | all'
expect_jq "the retries waited their backoff" '[.steps[] | select(.step == "b") | .attempts[1:][] | .backoff_us >= 5000] | all'
expect_jq "a dependent starts after its dependency ended" '(.steps | map({key: .step, value: .attempts}) | from_entries) as $s | $s.b[0].started_us >= ($s.a[-1].started_us + $s.a[-1].duration_us) and $s.d[0].started_us >= ($s.c[-1].started_us + $s.c[-1].duration_us)'
req GET "/v1/runs/$R1" '' -H "$VIEWER"
expect_code "GET the run" 200
expect_jq "the run's manifest and input" '.manifest == "dag.yaml" and .input == {"q": 1}'
check "the run's graph is its manifest's" sh -c "[ \"\$(jq -cS .graph '$TMP/out')\" = \"\$(jq -cS .graph '$TMP/dag_manifest.json')\" ]"

expect_jq "its report has started_us" '.report.steps[0].attempts[0].started_us >= 0'
req POST /v1/run '{"manifest": "dag.yaml", "trace": true, "seed": 7}' -H "$OP"
R_DEFAULT=$(jq -r .run_id "$TMP/out")
req GET "/v1/runs/$R_DEFAULT" '' -H "$OP"
expect_jq "without an input: the manifest's own is kept" '.input == {"default": true}'
req POST /v1/run '{"manifest_yaml": "router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: s, agent: e}]\n", "input": [1, "two"]}' -H "$OP"
R_INLINE=$(jq -r .run_id "$TMP/out")
req GET "/v1/runs/$R_INLINE" '' -H "$OP"
expect_jq "an inline manifest has no name; any JSON input is kept" '.manifest == null and .input == [1, "two"]'
expect_jq "an inline manifest's graph" '.graph == {"nodes": [{"id": "s", "agent": "e", "level": 0, "depends_on": []}], "edges": []}'
req GET "/v1/runs/$R1" '' -H "$BETA"
expect_code "another tenant's run (and its input)" 404

# The stream: step_started for every step, each before that step's end.
curl -s -N --max-time 20 -H "$OP" -H "Accept: text/event-stream" \
  --data-binary '{"manifest": "dag.yaml"}' "$SERVE_URL/v1/run" >"$TMP/sse"
awk '/^event: /{e=$2} /^data: /{print e, substr($0, 7)}' "$TMP/sse" >"$TMP/evdata"
check "the stream has one step_started per step" sh -c "[ \$(grep -c '^step_started ' '$TMP/evdata') = 4 ]"
for s in a b c d; do
  check "step $s: step_started ($s) comes before its step event" sh -c \
    "awk '\$1 == \"step_started\" && index(\$0, \"\\\"step\\\":\\\"$s\\\"\") {st = NR} \$1 == \"step\" && index(\$0, \"\\\"step\\\":\\\"$s\\\"\") {en = NR} END {exit !(st && en && st < en)}' '$TMP/evdata'"
done
check "step_started names the agent" grep -q '^step_started {"step":"b","agent":"flaky"}' "$TMP/evdata"
check "the stream still ends with the report" sh -c "tail -1 '$TMP/evdata' | grep -q '^report '"

# ---- debug ----------------------------------------------------------------------------------
req POST /v1/run '{"manifest": "dag.yaml", "input": {"q": 1}, "trace": true, "seed": 7}' -H "$OP"
R2=$(jq -r .run_id "$TMP/out")
cp "$TMP/out" "$TMP/r2.json"
check "the two runs' started_us differ (so debug must ignore them)" sh -c \
  "[ \"\$(jq -c '[.steps[].attempts[].started_us]' '$TMP/r1.json')\" != \"\$(jq -c '[.steps[].attempts[].started_us]' '$TMP/r2.json')\" ]"
req POST /v1/debug "{\"a\": \"$R1\", \"b\": \"$R2\"}" -H "$VIEWER"
expect_code "debug two identical runs (viewer)" 200
expect_jq "identical, timing fields aside" '. == {"identical": true, "notes": [], "divergences": []}'
req POST /v1/debug "{\"a\": \"$R1\", \"b\": \"$R_DEFAULT\"}" -H "$OP"
expect_code "debug runs of different inputs" 200
expect_jq "the first divergence" '.identical == false and (.divergences | length) == 1 and .divergences[0].path == "input.q" and .divergences[0].expected == 1 and .divergences[0].actual == null'
req POST /v1/debug "{\"a\": \"$R1\", \"b\": \"$R_DEFAULT\", \"all\": true}" -H "$OP"
expect_jq "all: every differing field, with steps" '(.divergences | length) > 1 and ([.divergences[].step] | index("a")) != null'
# The CLI says the same of the same traces.
req GET "/v1/runs/$R1/trace" '' -H "$OP"
cp "$TMP/out" "$TMP/t1.json"
req GET "/v1/runs/$R_DEFAULT/trace" '' -H "$OP"
cp "$TMP/out" "$TMP/t2.json"
"$FLUXROUTE" debug "$TMP/t1.json" "$TMP/t2.json" --json --all >"$TMP/cli.json" 2>/dev/null
jq -n --slurpfile t1 "$TMP/t1.json" --slurpfile t2 "$TMP/t2.json" '{a: $t1[0], b: $t2[0], all: true}' >"$TMP/body.json"
req POST /v1/debug "@$TMP/body.json" -H "$OP"
expect_code "debug uploaded traces" 200
check "uploaded traces: what fluxroute debug --json --all prints" sh -c "[ \"\$(jq -cS . '$TMP/out')\" = \"\$(jq -cS . '$TMP/cli.json')\" ]"
jq -n --slurpfile t1 "$TMP/t1.json" --arg b "$R1" '{a: $t1[0], b: $b}' >"$TMP/body.json"
req POST /v1/debug "@$TMP/body.json" -H "$OP"
expect_jq "a trace against its own run id: identical" '.identical == true'

# Bad input: each 400 names its field.
debug_bad() { # NAME BODY CODE STATUS FIELD
  req POST /v1/debug "$2" -H "$OP"
  expect_code "debug: $1" "$4"
  expect_jq "debug: $1: $3 naming $5" ".error.code == \"$3\" and .error.field == \"$5\" and (.error.message | startswith(\"$5\") or test(\"\\\"$5\\\"\"))"
}
debug_bad "no a" "{\"b\": \"$R1\"}" bad_request 400 a
debug_bad "no b" "{\"a\": \"$R1\"}" bad_request 400 b
debug_bad "a number" '{"a": 7, "b": "x"}' bad_request 400 a
debug_bad "b null" "{\"a\": \"$R1\", \"b\": null}" bad_request 400 b
debug_bad "an empty id" "{\"a\": \"\", \"b\": \"$R1\"}" bad_request 400 a
debug_bad "all not a boolean" "{\"a\": \"$R1\", \"b\": \"$R1\", \"all\": 1}" bad_request 400 all
debug_bad "an unknown field" "{\"a\": \"$R1\", \"b\": \"$R1\", \"c\": 1}" unknown_field 400 c
debug_bad "not a trace" "{\"a\": \"$R1\", \"b\": {\"format\": \"fluxroute-trace\"}}" invalid_trace 400 b
debug_bad "a run never traced" "{\"a\": \"$R1\", \"b\": \"$R_INLINE\"}" trace_not_recorded 404 b
debug_bad "no such run" "{\"a\": \"no-such-run\", \"b\": \"$R1\"}" run_not_found 404 a
req POST /v1/debug "{\"a\": \"$R1\", \"b\": \"$R2\"}" -H "$BETA"
expect_code "debug another tenant's runs" 404
expect_jq "another tenant's run is not found, and nothing of it shows" ".error.code == \"run_not_found\" and .error.field == \"a\" and (tostring | test(\"dag\") | not)"
req POST /v1/debug '{"a": "x", ' -H "$OP"
expect_code "debug: malformed JSON" 400
expect_jq "debug: malformed JSON" '.error.code == "malformed_json"'
req POST /v1/debug '[1, 2]' -H "$OP"
expect_code "debug: not an object" 400
head -c 70000 /dev/zero | tr '\0' 'x' | jq -Rc '{a: ., b: .}' >"$TMP/big.json"
req POST /v1/debug "@$TMP/big.json" -H "$OP"
expect_code "debug: a body over --max-body" 413
req GET /v1/debug '' -H "$OP"
expect_code "GET /v1/debug" 405

# ---- usage ------------------------------------------------------------------------------------
req GET /v1/usage '' -H "$OP"
expect_code "usage without a control plane" 503
expect_jq "usage without a control plane: says so" '.error.code == "usage_unavailable" and (.error.message | test("--controlplane"))'
stop_serve

ADMIN=console-admin-key-1
start_cp
for t in acme beta; do
  cp_req POST /v1/tenants "{\"id\": \"$t\", \"namespace\": \"$t\"}"
  cp_req POST "/v1/tenants/$t/keys" '{"role": "viewer"}'
  eval "KEY_$t=\$(jq -r .key \"\$TMP/out\")"
  cp_req POST "/v1/tenants/$t/keys" '{"role": "operator"}'
  eval "OPKEY_$t=\$(jq -r .key \"\$TMP/out\")"
done
cp_req POST /v1/service-keys
export CONTROLPLANE_SERVICE_KEY="$(jq -r .key "$TMP/out")" CONTROLPLANE_SPOOL="$TMP/usage.spool"
cp_req POST /v1/billing/rates '{"effective_from": "2024-01-01", "prices": [{"model": "*", "input_per_mtok": 0, "output_per_mtok": 0, "per_run": 250000}]}'
expect_code "a rate card" 201
# Keys from the control plane, and serve's own keys file beside it.
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --controlplane "$CP_URL" || exit 1
for i in 1 2 3; do req POST /v1/run '{"manifest": "dag.yaml"}' -H "Authorization: Bearer $OPKEY_acme"; done
expect_code "acme's runs" 200
req POST /v1/run '{"manifest": "beta.yaml"}' -H "Authorization: Bearer $OPKEY_beta"
expect_code "beta's run" 200
# Usage reaches the control plane within 100 ms of a run; wait for it, at most 10 s.
for _ in $(seq 1 100); do
  cp_req GET "/v1/usage?tenant_id=acme"
  [ "$(jq -r '.runs // .invocations // 0' "$TMP/out" 2>/dev/null)" = 3 ] && break
  sleep 0.1
done
req GET /v1/usage '' -H "Authorization: Bearer $KEY_acme"
expect_code "acme's usage (viewer key)" 200
cp "$TMP/out" "$TMP/acme_usage.json"
expect_jq "acme's usage: its tenant, the month" ".tenant_id == \"acme\" and (.period | test(\"^[0-9]{4}-[0-9]{2}$\")) and .period == \"$(date -u +%Y-%m)\""
expect_jq "acme's usage: the control plane's totals for acme" '.usage.tenant_id == "acme" and ((.usage.runs // .usage.invocations) == 3)'
expect_jq "acme's invoice: this month, its 3 runs" '.invoice != null and .invoice_error == null and (.invoice | tostring | test("acme"))'
req GET /v1/usage '' -H "Authorization: Bearer $KEY_beta"
expect_code "beta's usage" 200
expect_jq "beta's usage: its own, not acme's" '.tenant_id == "beta" and .usage.tenant_id == "beta" and ((.usage.runs // .usage.invocations) == 1)'
check "beta's answer names no acme" sh -c "! grep -q acme '$TMP/out'"
req GET '/v1/usage?period=2024-02' '' -H "Authorization: Bearer $KEY_acme"
expect_code "a past month" 200
expect_jq "a past month" '.period == "2024-02"'
for bad in 2024-13 2024-2 24-02 'x' '2024-02-01'; do
  req GET "/v1/usage?period=$bad" '' -H "Authorization: Bearer $KEY_acme"
  expect_code "period $bad" 400
  expect_jq "period $bad: names the field" '.error.code == "bad_request" and .error.field == "period"'
done
req GET /v1/usage '' -H "$OP"
expect_code "a key of serve's keys file, unknown to the control plane" 403
expect_jq "a keys-file key: says why" '.error.code == "forbidden" and (.error.message | test("keys file"))'
req POST /v1/usage '{}' -H "Authorization: Bearer $KEY_acme"
expect_code "POST /v1/usage" 405
stop_cp
req GET /v1/usage '' -H "Authorization: Bearer $KEY_acme"
expect_code "the control plane gone" 503
expect_jq "the control plane gone: controlplane_unavailable" '.error.code == "controlplane_unavailable"'
check "the control plane gone: Retry-After" grep -qi '^Retry-After: [0-9]' "$TMP/headers"
stop_serve

# ---- the input in the shared records (--state redis) --------------------------------------------
if ! command -v redis-server >/dev/null; then
  echo "ok - the input in Redis records # SKIP no redis-server"
  finish
  exit
fi
start_redis || { not_ok "redis-server starts"; finish; exit; }
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --state "$REDIS_URL" || exit 1
req POST /v1/run '{"manifest": "dag.yaml", "input": {"sync": [1, 2]}}' -H "$OP"
expect_code "redis: a sync run" 200
R_SYNC=$(jq -r .run_id "$TMP/out")
req POST /v1/run '{"manifest": "dag.yaml", "input": {"queued": "yes"}, "async": true}' -H "$OP"
expect_code "redis: a queued run" 202
R_QUEUED=$(jq -r .run_id "$TMP/out")
req GET "/v1/runs/$R_QUEUED" '' -H "$OP"
expect_jq "redis: the queued run's input, before it ends" '.input == {"queued": "yes"} and .manifest == "dag.yaml"'
for _ in $(seq 1 200); do
  req GET "/v1/runs/$R_QUEUED" '' -H "$OP"
  [ "$(jq -r .status "$TMP/out")" = succeeded ] && break
  sleep 0.05
done
expect_jq "redis: the queued run finished" '.status == "succeeded"'
stop_serve
# Another replica holds neither run in memory: it answers from the records.
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --state "$REDIS_URL" || exit 1
req GET "/v1/runs/$R_SYNC" '' -H "$VIEWER"
expect_code "redis: another replica has the sync run" 200
expect_jq "redis: with its input and manifest" '.input == {"sync": [1, 2]} and .manifest == "dag.yaml" and .report.steps[1].attempts[0].started_us >= 0'
check "redis: with its graph" sh -c "[ \"\$(jq -cS .graph '$TMP/out')\" = \"\$(jq -cS .graph '$TMP/dag_manifest.json')\" ]"

req GET "/v1/runs/$R_QUEUED" '' -H "$VIEWER"
expect_jq "redis: the queued run's input kept after it ran" '.input == {"queued": "yes"} and .status == "succeeded"'
check "redis: the queued run's graph kept after its consumer's writes" sh -c "[ \"\$(jq -cS .graph '$TMP/out')\" = \"\$(jq -cS .graph '$TMP/dag_manifest.json')\" ]"

req GET "/v1/runs/$R_SYNC" '' -H "$BETA"
expect_code "redis: another tenant's run" 404
finish
