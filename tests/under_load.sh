#!/bin/sh
# Runs the whole suite ROUNDS times in a row (default 5) with HOGS CPU-bound processes
# beside it (default 2), as a busy CI machine would, and fails if any round fails.
#   tests/under_load.sh [ROUNDS] [HOGS]        from the top of a bootstrapped tree
# Each round's failing tests and the tail of their logs are kept in
# tests/tmp/under-load/round-N/.  The hogs are stopped however the script ends.
set -u
cd "$(dirname "$0")/.." || exit 2
rounds=${1:-5}
hogs=${2:-2}
case "$rounds$hogs" in *[!0-9]*) echo "usage: tests/under_load.sh [ROUNDS] [HOGS]" >&2; exit 2 ;; esac
[ -f Makefile ] || { echo "under_load: run ./bootstrap.sh first" >&2; exit 2; }

pids=""
stop_hogs() {
  # shellcheck disable=SC2086 # a list of pids
  [ -n "$pids" ] && kill $pids 2>/dev/null
  pids=""
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT TERM
i=0
while [ "$i" -lt "$hogs" ]; do
  sh -c 'while :; do :; done' &
  pids="$pids $!"
  i=$((i + 1))
done

out=tests/tmp/under-load
rm -rf "$out"
mkdir -p "$out"
failed_rounds=0
r=1
while [ "$r" -le "$rounds" ]; do
  start=$(date +%s)
  make check >"$out/round-$r.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  summary=$(grep -E '^# (PASS|FAIL|ERROR):' "$out/round-$r.log" | tr '\n' ' ')
  if [ "$rc" = 0 ]; then
    echo "round $r/$rounds: ok in ${secs}s ($summary)"
  else
    failed_rounds=$((failed_rounds + 1))
    echo "round $r/$rounds: FAILED in ${secs}s ($summary)"
    mkdir -p "$out/round-$r"
    for t in $(sed -n 's/^\(FAIL\|ERROR\): //p' "$out/round-$r.log"); do
      echo "  $t"
      log=${t%.sh}.log # tests/e2e/e2e_x.sh logs to tests/e2e/e2e_x.log
      [ -f "$log" ] && cp "$log" "$out/round-$r/$(basename "$log")"
    done
  fi
  r=$((r + 1))
done
echo "under_load: $((rounds - failed_rounds)) of $rounds rounds green with $hogs CPU hogs"
[ "$failed_rounds" = 0 ]
