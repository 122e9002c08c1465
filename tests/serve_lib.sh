# Helpers for tests that run `fluxroute serve`: start it on an ephemeral loopback port
# (SERVE_URL is set from its first output line; METRICS_URL from the second, with
# --metrics-addr) and stop it.  Source after tests/lib.sh.
SERVE_PID=""
# sha TEXT: the hex sha256 of TEXT (as keys files hold API keys).
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
stop_serve() {
  if [ -n "$SERVE_PID" ]; then
    kill -TERM "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=""
  fi
}
trap 'stop_serve; rm -rf "$TMP"' EXIT

# start_serve ARGS...: returns 1 when it did not come up.
start_serve() {
  # Emptied here, before the server starts: the server's own redirection happens in the
  # child, possibly after the loop below has read an earlier server's address.
  : >"$TMP/serve.out"
  : >"$TMP/serve.err"
  "$FLUXROUTE" serve --addr 127.0.0.1:0 "$@" >"$TMP/serve.out" 2>"$TMP/serve.err" &
  SERVE_PID=$!
  SERVE_URL=""
  for _ in $(seq 1 600); do # 30 s: a busy machine, a sanitizer build
    SERVE_URL=$(sed -n 's/^listening on \(http[s]*:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$TMP/serve.out")
    # serve prints both lines at once.
    METRICS_URL=$(sed -n 's/^metrics listening on \(http:\/\/[^ ]*\)$/\1/p' "$TMP/serve.out")
    [ -n "$SERVE_URL" ] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "serve did not start:"; cat "$TMP/serve.err"
  return 1
}

# req METHOD PATH [BODY [CURL ARGS...]]: sets $code and leaves the body in $TMP/out.
req() {
  local method=$1 path=$2 body=${3:-}
  shift 3 2>/dev/null || shift $#
  rm -f "$TMP/out" # never judge a failed request by an earlier answer
  code=$(curl -s -o "$TMP/out" -D "$TMP/headers" -w '%{http_code}' --max-time 20 -X "$method" \
    ${body:+--data-binary "$body"} "$@" "$SERVE_URL$path")
}
# req_within MS NAME METHOD PATH [BODY [CURL ARGS...]]: req, then checks that the answer
# came within MS milliseconds (in $took_ms); the status is left to the caller.
req_within() {
  local max=$1 name=$2 t0 t1
  shift 2
  t0=$(date +%s%N)
  req "$@"
  t1=$(date +%s%N)
  took_ms=$(( (t1 - t0) / 1000000 ))
  if [ "$took_ms" -lt "$max" ]; then ok "$name (${took_ms}ms)"; else not_ok "$name" "${took_ms}ms"; fi
}
expect_code() { # NAME WANT
  if [ "$code" = "$2" ]; then ok "$1: HTTP $2"; else not_ok "$1: HTTP $2" "got $code"; fi
}
