#!/bin/sh
# make bench: runs `fluxroute bench` on the benchmark manifests and writes the figures
# to docs/benchmarks.md (the machine it ran on included).
set -eu
FLUXROUTE=$1
SRCDIR=$2
RUNS=${BENCH_RUNS:-5000}
WARMUP=${BENCH_WARMUP:-500}
OUT="$SRCDIR/docs/benchmarks.md"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d): $(nproc) cores, ${cpu:-unknown CPU}."
  echo "Each manifest is loaded once and run $RUNS times in-process after $WARMUP warm-up runs"
  echo "(\`fluxroute bench MANIFEST --runs $RUNS --warmup $WARMUP --json\`)."
  echo
  echo "| manifest | target (mean) | mean | p50 | p95 | p99 | runs/s | peak RSS |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$tmp"
for spec in "sequential10:50" "parallel100:1000"; do
  name=${spec%%:*}
  target=${spec##*:}
  json=$("$FLUXROUTE" bench "$SRCDIR/manifests/bench/$name.yaml" --runs "$RUNS" --warmup "$WARMUP" --json)
  echo "$json"
  echo "$json" | jq -r --arg n "$name" --arg t "$target" \
    '"| \($n) | ≤ \($t) µs | \(.mean_us) µs | \(.p50_us) µs | \(.p95_us) µs | \(.p99_us) µs | \(.runs_per_sec) | \(.peak_rss_kb) kB |"' >> "$tmp"
done
# Keep the hand-written analysis that follows the generated table.
if [ -f "$OUT" ] && grep -q '^## Notes' "$OUT"; then
  echo >> "$tmp"
  sed -n '/^## Notes/,$p' "$OUT" >> "$tmp"
fi
mv "$tmp" "$OUT"
trap - EXIT
echo "wrote $OUT"
