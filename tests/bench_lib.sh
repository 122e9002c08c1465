# Shared by the benchmarks that need a fake LLM vendor (bench_ai.sh, bench_journal.sh,
# bench_gateway.sh); sourced, never run.
#
# bench_start_fake_vendor NAME ARGS...: starts tests/fake_vendor with ARGS on an ephemeral
# 127.0.0.1 port.  Its stdin is a FIFO this shell holds open on fd 9, so the vendor also
# exits when the benchmark goes away.  Sets $fake_pid and $port; exits naming NAME when the
# vendor does not say its port within 5 s.  Needs $BUILDDIR and $TMP.
bench_start_fake_vendor() {
  bench_name=$1
  shift
  mkfifo "$TMP/in"
  "$BUILDDIR/tests/fake_vendor" "$@" <"$TMP/in" >"$TMP/port" 2>"$TMP/fake.err" &
  fake_pid=$!
  exec 9>"$TMP/in"
  port=$(bench_port_of "$TMP/port")
  [ -n "$port" ] || { echo "$bench_name: fake_vendor did not start: $(cat "$TMP/fake.err")" >&2; exit 1; }
}

# bench_port_of FILE: the N of the first "port N" line a starting server writes to FILE,
# waiting up to 5 s for it; prints nothing when none came.
bench_port_of() {
  for _ in $(seq 1 100); do
    p=$(awk '/^port [0-9]+$/ {print $2; exit}' "$1")
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.05
  done
}
