#!/bin/sh
# Control-plane usage ingestion rate (make bench): starts `fluxroute controlplane` on a
# fresh database (WAL, synchronous=FULL: every acknowledged request is fsynced) and posts
# events with tests/cp_load, single events and batches of 100, from several connections.
# Prints one JSON line per case; the last line is a Markdown table row per case.
#   bench_controlplane.sh BUILDDIR [EVENTS]
set -eu
BUILDDIR=$1
EVENTS=${2:-${BENCH_CP_EVENTS:-200000}}
SINGLE=${BENCH_CP_SINGLE:-5000}
CONNS=${BENCH_CP_CONNS:-8}
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
F="$BUILDDIR/fluxroute"
ADMIN=$("$F" controlplane create-admin-key --db "$tmp/cp.db" 2>/dev/null)
"$F" controlplane --db "$tmp/cp.db" --addr 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n '1s/^listening on //p' "$tmp/out")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$tmp/err"; exit 1; }
curl -sS -o /dev/null -H "Authorization: Bearer $ADMIN" -d '{"id":"bench"}' "$url/v1/tenants"
SVC=$(curl -sS -X POST -H "Authorization: Bearer $ADMIN" "$url/v1/service-keys" | jq -r .key)
single=$("$BUILDDIR/tests/cp_load" bench "$url" "$SVC" bench "$SINGLE" 1 "$CONNS" s)
batched=$("$BUILDDIR/tests/cp_load" bench "$url" "$SVC" bench "$EVENTS" 100 "$CONNS" b)
stored=$(curl -sS -H "Authorization: Bearer $ADMIN" "$url/v1/usage?tenant_id=bench" | jq .events)
echo "$single"
echo "$batched"
want=$(( $(echo "$single" | jq .events) + $(echo "$batched" | jq .events) ))
[ "$stored" = "$want" ] || { echo "stored $stored events, acknowledged $want" >&2; exit 1; }
echo "$single" | jq -r '"| single events | \(.conns) | \(.events) | \(.events_per_sec) |"'
echo "$batched" | jq -r '"| batches of 100 | \(.conns) | \(.events) | \(.events_per_sec) |"'
