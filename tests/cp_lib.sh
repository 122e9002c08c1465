# A control plane for end-to-end tests (`fluxroute controlplane` on an ephemeral loopback
# port, its database in $TMP).  Source after tests/lib.sh; the caller's EXIT trap calls
# stop_cp.
#   start_cp      starts it with $ADMIN as its admin API key; sets CP_URL (exits 1 when it
#                 does not come up)
#   stop_cp       stops it and waits
#   cp_req METHOD PATH [DATA [KEY]]  one request (KEY: default $ADMIN); sets $code, the
#                 answer in $TMP/out
CP_PID=""
CP_URL=""
stop_cp() {
  if [ -n "$CP_PID" ]; then kill "$CP_PID" 2>/dev/null; wait "$CP_PID" 2>/dev/null; fi
  CP_PID=""
}
start_cp() {
  CONTROLPLANE_API_KEY=$ADMIN "$FLUXROUTE" controlplane --db "$TMP/cp.db" --addr 127.0.0.1:0 \
    >"$TMP/cp.out" 2>"$TMP/cp.err" &
  CP_PID=$!
  CP_URL=""
  for _ in $(seq 1 200); do
    CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out"); [ -n "$CP_URL" ] && break
    sleep 0.05
  done
  [ -n "$CP_URL" ] || { echo "control plane did not start:"; cat "$TMP/cp.err"; exit 1; }
}
cp_req() {
  rm -f "$TMP/out"
  code=$(curl -sS --max-time 20 -o "$TMP/out" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer ${4:-$ADMIN}" ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$CP_URL$2")
}
