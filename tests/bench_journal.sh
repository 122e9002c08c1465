#!/bin/sh
# Durable runs' cost (issue 30): `fluxroute bench --journal-dir` with each --journal-sync
# setting against no journal, on sequential10 (echo steps: the journal's own cost per step)
# and ai_chain10 (10 llm steps against tests/fake_vendor answering after 20 ms).  Prints
# one markdown row per case: manifest, sync, p50 and mean per run, and per step over no
# journal, for the file backend (--journal-dir) and the Redis one (--journal-redis, a
# redis-server on a loopback port with appendonly yes and appendfsync always, as
# docs/scaling.md asks of a durable queue; skipped without redis-server).
#   tests/bench_journal.sh FLUXROUTE SRCDIR BUILDDIR
#   env: BENCH_JOURNAL_RUNS (300 for sequential10; a tenth of it for ai_chain10)
set -eu
FLUXROUTE=$1
SRCDIR=$2
BUILDDIR=$3
RUNS=${BENCH_JOURNAL_RUNS:-300}
KEY=sk-bench-not-secret
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-journal.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  stop_redis
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

. "$SRCDIR/tests/bench_lib.sh"
. "$SRCDIR/tests/redis_lib.sh"
backends=file
if command -v redis-server >/dev/null 2>&1 && start_redis --appendonly yes --appendfsync always; then
  backends="file redis"
fi
bench_start_fake_vendor bench_journal --openai-key "$KEY" --delay-ms 20
pid=$fake_pid
sed "s|127.0.0.1:18080|127.0.0.1:$port|" "$SRCDIR/manifests/bench/ai_chain10.yaml" >"$TMP/ai_chain10.yaml"
export FAKE_OPENAI_KEY=$KEY

for m in sequential10 ai_chain10; do
  if [ $m = sequential10 ]; then file="$SRCDIR/manifests/bench/sequential10.yaml"; n=$RUNS
  else file="$TMP/ai_chain10.yaml"; n=$((RUNS / 10)); fi
  base=""
  for s in none off step effect; do
    for b in $backends; do
      [ $s = none ] && [ $b = redis ] && continue
      rm -rf "$TMP/j" && mkdir "$TMP/j"
      if [ $s = none ]; then set --
      elif [ $b = file ]; then set -- --journal-dir "$TMP/j" --journal-sync "$s"
      else set -- --journal-redis "$REDIS_URL" --journal-sync "$s"; fi
      r=$("$FLUXROUTE" bench "$file" --runs "$n" --warmup 3 --json --plugin-dir "$BUILDDIR/plugins" "$@")
      p50=$(echo "$r" | jq .p50_us)
      mean=$(echo "$r" | jq .mean_us)
      [ -n "$base" ] || base=$p50
      echo "| $m | $([ $s = none ] && echo - || echo $b) | $s | $p50 | $mean | $(( (p50 - base) / 10 )) | $(awk -v a="$p50" -v b="$base" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }') |"
    done
  done
done
