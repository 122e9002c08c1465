#!/bin/sh
# valgrind finds no leaks and no memory errors in the CLI paths: a successful run, a
# failing run, validation errors, plugin listing, and the usage error path.
. "${FR_SRCDIR:-.}/tests/lib.sh"
if [ "${FR_SANITIZERS:-no}" = yes ] || [ -z "${VALGRIND:-}" ]; then
  echo "valgrind not used in this build (sanitizers on, or valgrind missing)"
  exit 77
fi
M="$FR_SRCDIR/manifests"

vg() { # NAME WANT_RC ARGS...
  name=$1 want=$2
  shift 2
  rc=0
  "$VALGRIND" -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --log-file="$TMP/vg" \
    "$FLUXROUTE" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
  if [ "$rc" = "$want" ] && ! [ -s "$TMP/vg" ]; then
    ok "valgrind $name"
  else
    not_ok "valgrind $name" "exit $rc (want $want)" "$(head -40 "$TMP/vg")"
  fi
}

vg "run hello" 0 run "$M/hello.yaml" --json
vg "run failing" 1 run "$M/examples/failure-isolation.yaml"
vg "validate errors" 2 validate "$DATA/bad.yaml"
vg "validate cycle" 2 validate "$DATA/cycle.yaml" --json
vg "bad option" 2 validate "$DATA/bad_option.yaml"
vg "unknown plugin" 2 run "$DATA/unknown_plugin.yaml"
vg "deadline" 1 run "$DATA/deadline.yaml"
vg "plugins list" 0 plugins list
vg "plugins info" 0 plugins info llm --json
vg "graph" 0 graph "$DATA/dataflow.yaml" --format mermaid
vg "bench" 0 bench "$M/bench/sequential10.yaml" --runs 20 --warmup 2
vg "isolation (crash, hang)" 1 run "$FR_SRCDIR/tests/data/resilience/isolation.yaml"
vg "retries, breaker, fallback" 0 run "$FR_SRCDIR/tests/data/resilience/policies.yaml"
vg "usage error" 2 run
finish
