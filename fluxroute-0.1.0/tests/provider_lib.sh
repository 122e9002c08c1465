# Helpers for the provider tests: start and stop tests/fake_vendor, write manifests from
# tests/data/providers/chat.yaml.  Source after tests/lib.sh.
FAKE_VENDOR="$FR_BUILDDIR/tests/fake_vendor"
PDATA="$FR_SRCDIR/tests/data/providers"
FAKE_PIDS=""
FAKE_FIFOS=0

stop_fakes() {
  for pid in $FAKE_PIDS; do kill "$pid" 2>/dev/null; done
  for pid in $FAKE_PIDS; do wait "$pid" 2>/dev/null; done
  FAKE_PIDS=""
}
trap 'stop_fakes; rm -rf "$TMP"' EXIT

# start_fake ARGS...: starts fake_vendor on 127.0.0.1 (ephemeral port) with ARGS and sets
# FAKE_PORT.  Its stdin is a FIFO this shell holds open (fd 7, 8, 9...), so the server
# also exits if this script dies without running its trap.  Returns 1 if it did not start.
start_fake() {
  FAKE_FIFOS=$((FAKE_FIFOS + 1))
  local fifo="$TMP/fake$FAKE_FIFOS.in" portf="$TMP/fake$FAKE_FIFOS.port" fd=$((6 + FAKE_FIFOS))
  mkfifo "$fifo"
  "$FAKE_VENDOR" "$@" <"$fifo" >"$portf" 2>"$TMP/fake$FAKE_FIFOS.err" &
  FAKE_PIDS="$FAKE_PIDS $!"
  eval "exec $fd>\"$fifo\""
  FAKE_PORT=""
  for _ in $(seq 1 100); do
    FAKE_PORT=$(awk '/^port [0-9]+$/ {print $2; exit}' "$portf" 2>/dev/null)
    [ -n "$FAKE_PORT" ] && return 0
    sleep 0.05
  done
  echo "fake_vendor did not start:"; cat "$TMP/fake$FAKE_FIFOS.err"
  return 1
}

# fake_stats PORT [SCHEME]: prints the server's counters JSON; fake_reset PORT zeroes them.
fake_stats() { curl -sS --max-time 5 "http://127.0.0.1:$1/_stats"; }
fake_reset() { curl -sS --max-time 5 -X POST "http://127.0.0.1:$1/_reset" >/dev/null; }

# manifest OUT PLUGIN MODEL BASE_URL KEY_ENV STREAM [PROVIDER_EXTRA [AGENT_EXTRA]]
# EXTRA strings are appended inside the flow mappings, e.g. ", timeout: 300ms".
manifest() {
  sed -e "s|@PLUGIN@|$2|" -e "s|@MODEL@|$3|" -e "s|@BASE_URL@|$4|" -e "s|@KEY_ENV@|$5|" \
      -e "s|@STREAM@|$6|" -e "s|@PROVIDER_EXTRA@|${7:-}|" -e "s|@AGENT_EXTRA@|${8:-}|" \
      "$PDATA/chat.yaml" >"$1"
}

# frl ARGS...: fr, keeping every output in $TMP/all.log (checked for leaked keys).
frl() {
  fr "$@"
  cat "$TMP/out" "$TMP/err" >>"$TMP/all.log"
}

# ask MANIFEST TEXT [ARGS...]: runs the manifest with input.text = TEXT, --json.
ask() {
  local m=$1 text=$2
  shift 2
  frl run "$m" --json --input "$(jq -cn --arg t "$text" '{text: $t}')" "$@"
}
