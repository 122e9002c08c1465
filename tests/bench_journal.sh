#!/bin/sh
# Durable runs' cost (issue 30): `fluxroute bench --journal-dir` with each --journal-sync
# setting against no journal, on sequential10 (echo steps: the journal's own cost per step)
# and ai_chain10 (10 llm steps against tests/fake_vendor answering after 20 ms).  Prints
# one markdown row per case: manifest, sync, p50 and mean per run, and per step over no
# journal, for the file backend (--journal-dir) and the Redis one (--journal-redis, a
# redis-server on a loopback port with appendonly yes and appendfsync always, as
# docs/scaling.md asks of a durable queue; skipped without redis-server).
#   tests/bench_journal.sh FLUXROUTE SRCDIR BUILDDIR
#   env: BENCH_JOURNAL_RUNS (300 for sequential10; a tenth of it for ai_chain10),
#   BENCH_JOURNAL_SHM (a tmpfs for the tmpfs row, /dev/shm), BENCH_JOURNAL_ROUNDS and
#   BENCH_JOURNAL_PAIR_RUNS (the alternating ai_chain10 rounds: 12 of 10 runs)
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

# The journal's own cost without the file system's: sequential10 with `off`, its files on
# tmpfs (/dev/shm) when there is one, against no journal measured just before.  On ext4
# most of `off`'s cost per run is creating the file (an inode, more after mass deletions).
SHM=${BENCH_JOURNAL_SHM:-/dev/shm}
if [ -d "$SHM" ] && [ -w "$SHM" ] && J=$(mktemp -d "$SHM/fr-bench-journal.XXXXXX"); then
  file="$SRCDIR/manifests/bench/sequential10.yaml"
  base=$("$FLUXROUTE" bench "$file" --runs "$RUNS" --warmup 3 --json --plugin-dir "$BUILDDIR/plugins" | jq .p50_us)
  r=$("$FLUXROUTE" bench "$file" --runs "$RUNS" --warmup 3 --json --plugin-dir "$BUILDDIR/plugins" --journal-dir "$J" --journal-sync off)
  rm -rf "$J"
  p50=$(echo "$r" | jq .p50_us)
  echo "| sequential10 | off, files on tmpfs (no journal: $base) | $p50 | $(echo "$r" | jq .mean_us) | $(( (p50 - base) / 10 )) | $(awk -v a="$p50" -v b="$base" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }') |"
fi

# The 2% target on a shared machine: ai_chain10 without a journal and with `step`, in
# rounds of BENCH_JOURNAL_PAIR_RUNS runs each (10), alternating which goes first, for
# BENCH_JOURNAL_ROUNDS rounds (12); each round's difference of p50s, and their median
# (p25 to p75): load from other processes shifts both sides of a round alike.
ROUNDS=${BENCH_JOURNAL_ROUNDS:-12}
PAIR=${BENCH_JOURNAL_PAIR_RUNS:-10}
: >"$TMP/diffs"
for i in $(seq 1 "$ROUNDS"); do
  order="none step"
  [ $((i % 2)) = 0 ] && order="step none"
  for s in $order; do
    rm -rf "$TMP/j" && mkdir "$TMP/j"
    if [ $s = none ]; then set --; else set -- --journal-dir "$TMP/j" --journal-sync step; fi
    v=$("$FLUXROUTE" bench "$TMP/ai_chain10.yaml" --runs "$PAIR" --warmup 1 --json --plugin-dir "$BUILDDIR/plugins" "$@" | jq .p50_us)
    if [ $s = none ]; then n0=$v; else n1=$v; fi
  done
  echo "$n0 $n1" >>"$TMP/diffs"
done
awk '{ d[NR] = $2 - $1; p[NR] = ($2 - $1) * 100 / $1; b[NR] = $1 }
  function sorted(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t } }
  END { n = NR; sorted(d, n); sorted(p, n); sorted(b, n)
    q1 = int((n + 3) / 4); q2 = int((n + 1) / 2); q3 = int((3 * n + 3) / 4)
    printf "| ai_chain10 | step vs none, %d alternating rounds of %s runs (median round; p25 to p75) | %d over %d | | %d | %+.1f%% (%+.1f%% to %+.1f%%) |\n", n, pair, d[q2], b[q2], d[q2] / 10, p[q2], p[q1], p[q3] }' pair="$PAIR" "$TMP/diffs"
