#!/bin/sh
# The HTTP module end to end: serve and the control plane listening on an IPv6 address
# ([::1], skipped when the machine has no IPv6 loopback), malformed addresses refused at
# start-up with the reason, the one vocabulary of error codes (payload_too_large), and the
# size of request headers that serve answers (28 KB) and refuses (40 KB: 431).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
S="$FR_SRCDIR/tests/data/serve"
mkdir -p "$TMP/m"
cp "$S"/echo.yaml "$TMP/m/"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha op-key-1), tenant: acme, namespace: acme, role: operator}
YAML
OP="Authorization: Bearer op-key-1"

# ---- malformed addresses ----------------------------------------------------------------------
for bad in "::1:8080" "[::1:8080" "127.0.0.1:99999" "8080"; do
  fr serve --addr "$bad" --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml"
  expect_rc "serve --addr $bad" 2
  expect_err "serve --addr $bad" "--addr $bad: "
done

# ---- request headers ---------------------------------------------------------------------------
# A connection's memory in libmicrohttpd (its default, 32 KB) holds the request's headers:
# 28 KB of them are answered; 40 KB are refused with 431 (libmicrohttpd's own page).
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml"
h28=$(head -c 28672 /dev/zero | tr '\0' 'a')
req POST /v1/run '{"manifest": "echo.yaml", "input": {"text": "big headers"}}' -H "$OP" \
  -H "X-Big: $h28"
expect_code "serve: 28 KB of request headers answered" 200
expect_jq "serve: 28 KB of request headers answered" '.status == "succeeded"'
h40=$(head -c 40960 /dev/zero | tr '\0' 'a')
req GET /healthz '' -H "X-Big: $h40"
expect_code "serve: 40 KB of request headers refused" 431
req GET /healthz ''
expect_code "serve: healthz after the refusal" 200
stop_serve

# ---- IPv6 -------------------------------------------------------------------------------------
# v6_url OUT PID: the http://[::1]:PORT of the first stdout line of a server started with
# its output in OUT (empty when it did not come up).
v6_url() {
  for _ in $(seq 1 600); do # 30 s: a busy machine, a sanitizer build
    sed -n 's/^listening on \(http:\/\/\[::1\]:[0-9]*\)$/\1/p' "$1" | grep . && return
    kill -0 "$2" 2>/dev/null || return
    sleep 0.05
  done
}
# Whether [::1] can be bound here (a container may have IPv6 off).
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  "$FLUXROUTE" serve --addr "[::1]:0" --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
    --max-body 1000 >"$TMP/serve.out" 2>"$TMP/serve.err" &
  SERVE_PID=$!
  SERVE_URL=$(v6_url "$TMP/serve.out" "$SERVE_PID")
  if [ -n "$SERVE_URL" ]; then
    ok "serve on [::1]: listening on $SERVE_URL"
    req GET /healthz '' -g; expect_code "serve on [::1]: healthz" 200
    req POST /v1/run '{"manifest": "echo.yaml", "input": {"text": "over IPv6"}}' -g -H "$OP"
    expect_code "serve on [::1]: a run" 200
    expect_jq "serve on [::1]: a run" '.status == "succeeded"'
    big=$(head -c 2000 /dev/zero | tr '\0' 'a')
    req POST /v1/run "{\"manifest\": \"echo.yaml\", \"input\": \"$big\"}" -g -H "$OP"
    expect_code "serve: body over --max-body" 413
    expect_jq "serve: body over --max-body" '.error.code == "payload_too_large"'
  else
    not_ok "serve on [::1]" "$(cat "$TMP/serve.err")"
  fi
  stop_serve

  DB="$TMP/cp.db"
  ADMIN=$("$FLUXROUTE" controlplane create-admin-key --db "$DB" 2>/dev/null)
  "$FLUXROUTE" controlplane --db "$DB" --addr "[::1]:0" >"$TMP/cp.out" 2>"$TMP/cp.err" &
  CP_PID=$!
  CP_URL=$(v6_url "$TMP/cp.out" "$CP_PID")
  if [ -n "$CP_URL" ]; then
    ok "controlplane on [::1]: listening on $CP_URL"
    SERVE_URL=$CP_URL
    req GET /v1/tenants '' -g -H "Authorization: Bearer $ADMIN"
    expect_code "controlplane on [::1]: tenants" 200
    head -c 1100000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
    req POST /v1/usage "@$TMP/big.json" -g -H "Authorization: Bearer $ADMIN"
    expect_code "controlplane: body over 1 MiB" 413
    expect_jq "controlplane: body over 1 MiB" '.error.code == "payload_too_large"'
  else
    not_ok "controlplane on [::1]" "$(cat "$TMP/cp.err")"
  fi
  kill -TERM "$CP_PID" 2>/dev/null
  wait "$CP_PID" 2>/dev/null
else
  echo "ok - # SKIP no IPv6 loopback on this machine"
fi
finish
