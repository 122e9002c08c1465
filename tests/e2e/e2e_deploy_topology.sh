#!/bin/sh
# The compose topology without containers (issue 29; tests/e2e/deploy_topology.py says
# exactly what is mapped): redis-server, the control plane, two routers and the worker as
# deploy/compose/compose.yaml runs them, Prometheus with deploy/prometheus/; every metric
# name deploy/grafana/*.json and deploy/prometheus/alerts.yml use is exposed by the running
# binaries (tests/e2e/deploy_metric_names.py); a pipeline run through a router; every
# target up in Prometheus, the rules loaded, and the run in what Prometheus scraped.
# 127.0.0.1 only; needs redis-server, prometheus (Debian package prometheus) and PyYAML.
. "${FR_SRCDIR:-.}/tests/lib.sh"
for tool in redis-server redis-cli prometheus; do
  command -v "$tool" >/dev/null 2>&1 || {
    not_ok "$tool is installed (./bootstrap.sh installs it)"
    finish
    exit 1
  }
done
python3 -c 'import yaml' 2>/dev/null || { not_ok "python3 has PyYAML (Debian package python3-yaml)"; finish; exit 1; }
if [ ! -f "$FR_SRCDIR/deploy/compose/compose.yaml" ]; then
  not_ok "deploy/compose/compose.yaml exists"
  finish
  exit 1
fi
python3 "$FR_SRCDIR/tests/e2e/deploy_topology.py" "$FR_SRCDIR" "$FLUXROUTE" "$TMP" >"$TMP/topology.log" 2>&1
rc=$?
cat "$TMP/topology.log"
passed=$(grep -c '^ok' "$TMP/topology.log")
failed=$(grep -c '^not ok' "$TMP/topology.log")
[ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
for f in "$TMP"/*.out.err; do
  if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f" 2>/dev/null; then
    not_ok "no sanitizer reports in $(basename "$f" .out.err)" "$(head -30 "$f")"
  fi
done
finish
