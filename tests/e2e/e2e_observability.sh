#!/bin/sh
# End-to-end tests of observability: the invocation log, the hash-chained audit log
# (audit-verify, audit-export), /metrics during a run (promtool), OTLP spans (a loopback
# receiver), traceparent propagation, and that no secret reaches any of them.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/tls_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
trap 'stop_serve; stop_fakes; rm -rf "$TMP"' EXIT
unset LOG_PATH AUDIT_LOG_PATH AUDIT_FSYNC METRICS_ENABLED METRICS_ADDR TRACE_ENABLED TRACE_ENDPOINT \
  TRACE_OUTPUT METRICS_TLS_ENABLED
OBS="$FR_SRCDIR/tests/data/obs/obs.yaml"
M="$FR_SRCDIR/manifests"


# start_receiver OUT: the loopback OTLP receiver (tests/otlp_receiver.py); sets RPORT.
start_receiver() {
  FAKE_FIFOS=$((FAKE_FIFOS + 1))
  local fifo="$TMP/recv$FAKE_FIFOS.in" portf="$TMP/recv$FAKE_FIFOS.port" fd=$((6 + FAKE_FIFOS))
  mkfifo "$fifo"
  python3 "$FR_SRCDIR/tests/otlp_receiver.py" "$1" <"$fifo" >"$portf" 2>"$TMP/recv.err" &
  FAKE_PIDS="$FAKE_PIDS $!"
  eval "exec $fd>\"$fifo\""
  RPORT=""
  for _ in $(seq 1 100); do
    RPORT=$(awk '/^port [0-9]+$/ {print $2; exit}' "$portf" 2>/dev/null)
    [ -n "$RPORT" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- invocation log ---------------------------------------------------------------------
LOG_PATH="$TMP/log.jsonl" fr run "$OBS"
expect_rc "log: run" 0
check "log: every line is JSON" jq -e . "$TMP/log.jsonl"
check "log: one attempt line per attempt (4) and a run line" \
  jq -se '[.[] | select(.event == "attempt")] | length == 4' "$TMP/log.jsonl"
check "log: attempt fields" jq -se '[.[] | select(.event == "attempt")] | all(has("ts") and has("run_id")
  and .namespace == "obs-e2e" and has("step") and has("agent") and (.attempt | type == "number")
  and has("status") and has("class") and (.duration_us | type == "number"))' "$TMP/log.jsonl"
check "log: llm attempt has provider, model, tokens" jq -se '[.[] | select(.step == "summarize")][0]
  | .provider == "local" and .model == "mock \"q\" \\ 1" and .tokens.input > 0 and .tokens.output > 0' "$TMP/log.jsonl"
check "log: failed attempt at warn with its class" jq -se '[.[] | select(.step == "flaky" and .attempt == 1)][0]
  | .level == "warn" and .status == "failed" and .class == "unavailable"' "$TMP/log.jsonl"
check "log: retry at info" jq -se '[.[] | select(.step == "flaky" and .attempt == 2)][0]
  | .level == "info" and .status == "succeeded" and .class == null' "$TMP/log.jsonl"
check "log: breaker transitions logged" jq -se '[.[] | select(.event == "breaker")] | length == 3' "$TMP/log.jsonl"
check "log: run line" jq -se '[.[] | select(.event == "run")][0] | .status == "succeeded" and .steps == 3' "$TMP/log.jsonl"
LOG_PATH="$TMP/warn.jsonl" LOG_LEVEL=warn fr run "$OBS"
check "log: LOG_LEVEL=warn keeps failures only" \
  jq -se 'length == 4 and all(.level == "warn")' "$TMP/warn.jsonl"
fr run "$OBS"
expect_no_err "log: off by default (readable CLI)" '"event"'
LOG_LEVEL=info fr run "$OBS"
expect_err "log: LOG_LEVEL alone logs to stderr" '"event":"attempt"'
expect_out "log: LOG_LEVEL alone keeps the report on stdout" "succeeded"

# ---- audit log --------------------------------------------------------------------------
A="$TMP/audit.jsonl"
export AUDIT_LOG_PATH="$A"
fr run "$M/hello.yaml"
fr validate "$M/hello.yaml"
REQUEST_ROLE=viewer fr run "$M/hello.yaml"
expect_rc "audit: viewer denied" 3
fr run "$M/hello.yaml" --trace "$TMP/hello.trace"
fr replay "$TMP/hello.trace"
check "audit: one line per command (5)" test "$(wc -l <"$A")" -eq 5
check "audit: fields" jq -se '.[0] | has("time") and .actor != null and .role == "operator"
  and .namespace == "hello" and .action == "run_manifest" and (.resource.manifest | endswith("hello.yaml"))
  and (.resource.manifest_sha256 | test("^[0-9a-f]{64}$")) and (.resource.run_id | test("^[0-9a-f-]{36}$"))
  and .decision == "allowed" and .result == "succeeded" and (.prev | test("^0{64}$"))' "$A"
check "audit: denial line" jq -se '.[2] | .decision == "denied" and .role == "viewer" and .result == "denied"' "$A"
check "audit: validate and replay lines" \
  jq -se '.[1].action == "validate_manifest" and .[1].result == "valid" and .[4].action == "replay_trace" and .[4].result == "identical"' "$A"
fr audit-verify "$A"
expect_rc "audit-verify: intact" 0
expect_out "audit-verify: intact" "chain intact (5 lines)"
sed '3s/"viewer"/"admin"/' "$A" >"$TMP/edited.jsonl"
fr audit-verify "$TMP/edited.jsonl"
expect_rc "audit-verify: edited line" 1
expect_out "audit-verify: edited line" "edited.jsonl:3: chain broken"
sed '2d' "$A" >"$TMP/deleted.jsonl"
fr audit-verify "$TMP/deleted.jsonl" --json
expect_rc "audit-verify: deleted line" 1
expect_jq "audit-verify: deleted line" '.valid == false and .broken_line == 2 and (.reason | contains("removed"))'
sed '1d' "$A" >"$TMP/deleted1.jsonl"
fr audit-verify "$TMP/deleted1.jsonl" --json
expect_jq "audit-verify: first line deleted" '.broken_line == 1'
awk 'NR == 2 { l2 = $0; next } NR == 3 { print; print l2; next } { print }' "$A" >"$TMP/reordered.jsonl"
fr audit-verify "$TMP/reordered.jsonl" --json
expect_rc "audit-verify: reordered lines" 1
expect_jq "audit-verify: reordered lines" '.broken_line == 2'
# An edited line whose own hash was recomputed still breaks the next line's prev.
python3 - "$A" "$TMP/rehashed.jsonl" <<'EOF'
import hashlib, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
body = lines[1][:-75].replace('"valid"', '"invalid"')
lines[1] = body + ',"hash":"' + hashlib.sha256(body.encode()).hexdigest() + '"}'
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines) + "\n")
EOF
fr audit-verify "$TMP/rehashed.jsonl" --json
expect_jq "audit-verify: re-hashed edit caught by the next line" '.broken_line == 3'
fr audit-verify "$TMP/nope.jsonl"
expect_rc "audit-verify: unreadable" 2

# Concurrent appends from several processes keep one chain.
C="$TMP/concurrent.jsonl"
for p in 1 2 3 4 5 6 7 8; do
  (for i in 1 2 3 4 5 6; do AUDIT_LOG_PATH="$C" AUDIT_FSYNC=off "$FLUXROUTE" validate "$M/hello.yaml" >/dev/null 2>&1; done) &
done
wait
check "audit: 8 processes x 6 appends = 48 lines" test "$(wc -l <"$C")" -eq 48
fr audit-verify "$C"
expect_rc "audit: concurrent chain intact" 0
AUDIT_LOG_PATH="$TMP/batch.jsonl" AUDIT_FSYNC=batch fr validate "$M/hello.yaml"
fr audit-verify "$TMP/batch.jsonl"
expect_out "audit: AUDIT_FSYNC=batch" "chain intact (1 line)"

# CSV export round-trips awkward values (comma, quote, newline, unicode).
W="$TMP/we,ird \"name\"
été ☃.yaml"
cp "$M/hello.yaml" "$W"
X="$TMP/awkward.jsonl"
AUDIT_LOG_PATH="$X" fr validate "$W"
AUDIT_LOG_PATH="$X" REQUEST_ROLE='bad,"role"
x' fr run "$W"
AUDIT_LOG_PATH="$X" fr run "$M/hello.yaml"
fr audit-export "$X" -o "$TMP/awkward.csv"
expect_rc "audit-export: -o" 0
check "audit-export: CSV parses back to the audit lines" python3 - "$X" "$TMP/awkward.csv" <<'EOF'
import csv, json, sys
cols = ["time", "actor", "role", "tenant", "namespace", "action", "manifest", "manifest_sha256",
        "run_id", "decision", "result", "error", "prev", "hash", "lease_key", "fencing_token"]
want = [cols]
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    o.update(o.pop("resource"))
    want.append(["" if o.get(c) is None else str(o[c]) for c in cols])
raw = open(sys.argv[2], "rb").read()
assert raw.endswith(b"\r\n"), "rows end with CRLF"
got = list(csv.reader(open(sys.argv[2], encoding="utf-8", newline="")))
assert got == want, (got, want)
assert any("\n" in r[6] and "," in r[6] and '"' in r[6] and "☃" in r[6] for r in got[1:])
assert any(r[2] == 'bad,"role"\nx' for r in got[1:])
EOF
fr audit-export "$X"
expect_out "audit-export: stdout" "time,actor,role"
# A value that a spreadsheet would run as a formula is exported as text (OWASP CSV injection).
F="$TMP/formula.jsonl"
AUDIT_LOG_PATH="$F" REQUEST_ROLE='=HYPERLINK("http://evil.example/","x")' fr run "$M/hello.yaml"
AUDIT_LOG_PATH="$F" REQUEST_ROLE='@SUM(1+1)' fr run "$M/hello.yaml"
fr audit-export "$F" -o "$TMP/formula.csv"
check "audit-export: formulas neutralised" python3 - "$TMP/formula.csv" <<'EOF2'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8", newline="")))[1:]
assert [r[2] for r in rows] == ["'=HYPERLINK(\"http://evil.example/\",\"x\")", "'@SUM(1+1)"], rows
assert all(not c or c[0] not in "=+-@\t\r" for r in rows for c in r), rows
EOF2
printf 'not json\n' >"$TMP/bad.jsonl"
fr audit-export "$TMP/bad.jsonl" -o "$TMP/bad.csv"
expect_rc "audit-export: malformed line" 2
check "audit-export: no partial CSV" test ! -e "$TMP/bad.csv"
unset AUDIT_LOG_PATH

# ---- /metrics during a run --------------------------------------------------------------
METRICS_ENABLED=true METRICS_ADDR=127.0.0.1:0 "$FLUXROUTE" run "$OBS" >"$TMP/mrun.out" 2>"$TMP/mrun.err" &
mpid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^fluxroute: metrics on \(http[^ ]*\)$/\1/p' "$TMP/mrun.err")
  [ -n "$url" ] && curl -sf --max-time 2 "$url" >"$TMP/metrics.txt" &&
    grep -q 'fluxroute_retries_total{' "$TMP/metrics.txt" && break
  sleep 0.05
done
# The slow step leaves a second or more: a POST is refused, saying what is allowed.
curl -s --max-time 2 -X POST -D "$TMP/mpost.headers" -o /dev/null "$url"
wait $mpid
check "metrics: POST gets 405 with Allow" sh -c \
  "grep -q '^HTTP/1.1 405' '$TMP/mpost.headers' && grep -qi '^Allow: GET, HEAD' '$TMP/mpost.headers'"
check "metrics: scraped during the run" grep -q 'fluxroute_step_attempts_total{namespace="obs-e2e",agent="flaky",status="failed",class="unavailable"} 1' "$TMP/metrics.txt"
if command -v promtool >/dev/null; then
  check "metrics: promtool check metrics" sh -c "promtool check metrics <'$TMP/metrics.txt'"
else
  not_ok "metrics: promtool check metrics" "promtool not installed (Debian package prometheus; ./bootstrap.sh installs it)"
fi
check "metrics: label values escaped" grep -qF 'model="mock \"q\" \\ 1"' "$TMP/metrics.txt"
check "metrics: provider tokens" grep -q '^fluxroute_provider_tokens_total{provider="local",.*direction="input"} [1-9]' "$TMP/metrics.txt"
check "metrics: breaker transitions" grep -q 'fluxroute_circuit_transitions_total{namespace="obs-e2e",breaker="agent:flaky",from="closed",to="open"} 1' "$TMP/metrics.txt"
check "metrics: histogram" grep -q '^fluxroute_step_duration_seconds_bucket{namespace="obs-e2e",agent="summarize",status="succeeded",le="+Inf"} 1' "$TMP/metrics.txt"
check "metrics: endpoint gone after the run" sh -c "! curl -sf --max-time 2 '$url' >/dev/null"
METRICS_ENABLED=1 METRICS_ADDR=nonsense fr run "$OBS"
expect_rc "metrics: bad METRICS_ADDR" 2
expect_err "metrics: bad METRICS_ADDR" "METRICS_ADDR"

# ---- OpenTelemetry ----------------------------------------------------------------------
S="$TMP/spans.jsonl"
if start_receiver "$S"; then
  TRACE_ENABLED=1 TRACE_ENDPOINT="127.0.0.1:$RPORT" fr run "$M/hello.yaml" --json
  expect_rc "otel: run" 0
  cp "$TMP/out" "$TMP/hello.json"
  jq -s '[.[].resourceSpans[].scopeSpans[].spans[]]' "$S" >"$TMP/spans.json" 2>/dev/null
  sp() { jq -e "$1" "$TMP/spans.json" >/dev/null; }
  check "otel: 1 run + 3 steps + 3 attempts + 2 provider spans" sp 'length == 9'
  check "otel: one trace" sp '[.[].traceId] | unique | length == 1'
  check "otel: run span is the root" sp '[.[] | select(.parentSpanId == null)] | length == 1 and .[0].name == "fluxroute run"'
  check "otel: steps are children of the run" sp '(map(select(.name == "fluxroute run"))[0].spanId) as $r
    | [.[] | select(.name | startswith("step "))] | length == 3 and all(.parentSpanId == $r)'
  check "otel: attempts are children of their steps" sp '. as $all | [.[] | select(.name | startswith("attempt "))]
    | all(.parentSpanId as $p | ($all | map(select(.spanId == $p))[0].name | startswith("step ")))'
  check "otel: provider spans are children of the llm attempts" sp '. as $all | [.[] | select(.name | startswith("chat "))]
    | length == 2 and all(.parentSpanId as $p | ($all | map(select(.spanId == $p))[0].name) | test("^attempt (summarize|classify)$"))'
  jq '[.steps[0].output.usage.input_tokens, .steps[0].output.usage.output_tokens]' "$TMP/hello.json" >"$TMP/usage.json"
  check "otel: gen_ai attributes" jq -e --argjson u "$(cat "$TMP/usage.json")" '
    ([.[] | select(.name == "chat mock-1")][0].attributes | map({(.key): .value}) | add) as $a
    | $a["gen_ai.system"].stringValue == "mock" and $a["gen_ai.request.model"].stringValue == "mock-1"
      and $a["gen_ai.usage.input_tokens"].intValue == ($u[0] | tostring)
      and $a["gen_ai.usage.output_tokens"].intValue == ($u[1] | tostring)' "$TMP/spans.json"
  check "otel: span times" sp 'all((.endTimeUnixNano | tonumber) >= (.startTimeUnixNano | tonumber))'
else
  not_ok "otel: receiver started" "$(cat "$TMP/recv.err")"
fi

# A dead endpoint neither fails nor slows a run (spans are dropped, counted, logged once).
t0=$(date +%s%N)
TRACE_ENABLED=1 TRACE_ENDPOINT=127.0.0.1:1 fr run "$M/hello.yaml"
t1=$(date +%s%N)
expect_rc "otel: dead endpoint" 0
expect_err "otel: dead endpoint logged" "otel: export to http://127.0.0.1:1/v1/traces failed"
check "otel: dead endpoint costs < 3 s" test $(((t1 - t0) / 1000000)) -lt 3000

# ---- secrets ----------------------------------------------------------------------------
# A wrong key, echoed back by the fake vendor's 401 message: it must not reach the log,
# the audit line or a span.
export FAKE_OPENAI_KEY=sk-obs-right-key-1111
if start_fake --openai-key "$FAKE_OPENAI_KEY" && start_receiver "$TMP/secret-spans.jsonl"; then
  manifest "$TMP/secret.yaml" openai m "http://127.0.0.1:$FAKE_PORT/v1" OBS_WRONG_KEY false
  OBS_WRONG_KEY=sk-obs-wrong-secret-2222 LOG_PATH="$TMP/secret-log.jsonl" AUDIT_LOG_PATH="$TMP/secret-audit.jsonl" \
    TRACE_ENABLED=1 TRACE_ENDPOINT="http://127.0.0.1:$RPORT" fr run "$TMP/secret.yaml" --json
  expect_rc "secrets: wrong key fails the run" 1
  expect_jq "secrets: auth class" '.steps[0].error.class == "auth"'
  check "secrets: the log line carries the scrubbed message" \
    jq -se '[.[] | select(.event == "attempt")][0] | .class == "auth" and (.message | type == "string")' "$TMP/secret-log.jsonl"
  check "secrets: the failed provider call is a span" grep -q 'chat ' "$TMP/secret-spans.jsonl"
  check "secrets: no key in log, audit, spans, output" sh -c "! cat '$TMP/secret-log.jsonl' '$TMP/secret-audit.jsonl' '$TMP/secret-spans.jsonl' '$TMP/out' '$TMP/err' | grep -q 'sk-obs-wrong-secret-2222\|sk-obs-right-key-1111'"
  # traceparent reaches provider HTTP requests: the fetch test agent calls the receiver.
  cat >"$TMP/fetch.yaml" <<EOF
agents:
  - {id: get, plugin: fetch, config: {url: "http://127.0.0.1:$RPORT/echo-traceparent"}}
pipeline:
  - step: get
EOF
  TRACE_ENABLED=1 TRACE_ENDPOINT="http://127.0.0.1:$RPORT" fr run "$TMP/fetch.yaml" --json \
    --plugin-dir "$FR_BUILDDIR/tests/plugins/.libs"
  expect_rc "otel: fetch run" 0
  tp=$(cat "$TMP/secret-spans.jsonl.tp" 2>/dev/null)
  check "otel: traceparent header sent" sh -c "echo '$tp' | grep -Eqx '00-[0-9a-f]{32}-[0-9a-f]{16}-01'"
  sleep 0.3
  check "otel: traceparent names the attempt span" jq -se --arg tp "$tp" \
    '[.[].resourceSpans[].scopeSpans[].spans[] | select(.name == "attempt get") | "00-\(.traceId)-\(.spanId)-01"] | index($tp) != null' "$TMP/secret-spans.jsonl"
else
  not_ok "secrets: servers started"
fi

# ---- /metrics over TLS and mTLS (METRICS_TLS_*) --------------------------------------------
if command -v certtool >/dev/null 2>&1; then
  make_test_ca "scraper"
  SLOW="$TMP/slow.yaml"
  printf 'agents: [{id: s, plugin: chaos, config: {delay: 3s}}]\npipeline: [{step: s}]\n' > "$SLOW"
  METRICS_ENABLED=1 METRICS_ADDR=127.0.0.1:0 METRICS_TLS_ENABLED=1 METRICS_TLS_CERT_FILE="$TMP/srv.pem" \
    METRICS_TLS_KEY_FILE="$TMP/srv.key" METRICS_TLS_CA_FILE="$TMP/ca.pem" METRICS_TLS_REQUIRE_CLIENT_CERT=1 \
    "$FLUXROUTE" run "$SLOW" >"$TMP/tls.out" 2>"$TMP/tls.err" &
  tpid=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^fluxroute: metrics on \(http[^ ]*\)$/\1/p' "$TMP/tls.err"); [ -n "$url" ] && break; sleep 0.05
  done
  case $url in https://*) ok "metrics TLS: https endpoint" ;; *) not_ok "metrics TLS: https endpoint" "$(cat "$TMP/tls.err")" ;; esac
  check "metrics mTLS: scrape with a client certificate" \
    curl -sf --max-time 3 --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key" -o "$TMP/tls-metrics.txt" "$url"
  check "metrics mTLS: the scrape has metrics" grep -q '^# TYPE fluxroute_' "$TMP/tls-metrics.txt"
  check "metrics mTLS: no client certificate, no metrics" sh -c "! curl -sf --max-time 3 --cacert '$TMP/ca.pem' '$url' >/dev/null 2>&1"
  kill -INT "$tpid" 2>/dev/null
  wait "$tpid" 2>/dev/null
else
  not_ok "certtool (gnutls-bin) is installed"
fi

# ---- serve: an incoming W3C traceparent joins the caller's trace ---------------------------
if start_receiver "$TMP/serve-spans.jsonl"; then
  mkdir -p "$TMP/sm"
  printf 'router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$TMP/sm/echo.yaml"
  printf 'keys:\n  - {id: k, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
    "$(printf %s obs-serve-key | sha256sum | cut -d' ' -f1)" > "$TMP/skeys.yaml"
  TRACE_ENABLED=1 TRACE_ENDPOINT="127.0.0.1:$RPORT" start_serve \
    --manifest-dir "$TMP/sm" --keys "$TMP/skeys.yaml"
  curl -sf --max-time 10 -H "Authorization: Bearer obs-serve-key" \
    -H "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" \
    -d '{"manifest": "echo.yaml"}' "$SERVE_URL/v1/run" >/dev/null
  stop_serve
  for _ in $(seq 1 50); do
    grep -q 0af7651916cd43dd8448eb211c80319c "$TMP/serve-spans.jsonl" 2>/dev/null && break; sleep 0.1
  done
  check "serve: spans join the caller's trace" jq -se \
    '[.[].resourceSpans[].scopeSpans[].spans[] | select(.traceId == "0af7651916cd43dd8448eb211c80319c")] | length >= 3' "$TMP/serve-spans.jsonl"
  check "serve: the run span's parent is the caller's span" jq -se \
    '[.[].resourceSpans[].scopeSpans[].spans[] | select(.parentSpanId == "b7ad6b7169203331")] | length == 1' "$TMP/serve-spans.jsonl"
else
  not_ok "otel receiver for serve"
fi

# ---- serve: batched audit lines under concurrent requests, with another process appending -----
mkdir -p "$TMP/am"
printf 'router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$TMP/am/echo.yaml"
printf 'keys:\n  - {id: k, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(printf %s obs-audit-key | sha256sum | cut -d' ' -f1)" > "$TMP/akeys.yaml"
A="$TMP/serve-audit.jsonl"
AUDIT_LOG_PATH="$A" AUDIT_FSYNC=batch start_serve --manifest-dir "$TMP/am" --keys "$TMP/akeys.yaml"
seq 1 200 | xargs -P 8 -I{} curl -s -o /dev/null --max-time 20 -H "Authorization: Bearer obs-audit-key" \
  -d '{"manifest": "echo.yaml"}' "$SERVE_URL/v1/run" &
xpid=$!
for i in 1 2 3 4 5 6 7 8 9 10; do
  AUDIT_LOG_PATH="$A" AUDIT_FSYNC=line "$FLUXROUTE" validate "$M/hello.yaml" >/dev/null 2>&1
done
wait "$xpid"
stop_serve
check "audit: serve (batched) + a CLI process: 200 + 10 lines" test "$(wc -l <"$A")" -eq 210
check "audit: serve wrote one line per run" test "$(grep -c '"action":"run_manifest"' "$A")" -eq 200
fr audit-verify "$A"
expect_rc "audit: serve's batched chain intact with a second writer" 0

finish
