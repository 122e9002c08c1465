#!/bin/sh
# deploy/prometheus: promtool check rules and config, the alerts' unit tests (every alert
# has a firing and a quiet case; a broken rule makes them fail), and the Grafana
# dashboard's queries parsed by promtool, with a panel for each thing issue 29 lists.
. "${FR_SRCDIR:-.}/tests/lib.sh"
P="$FR_SRCDIR/deploy/prometheus"
CHECK="$FR_SRCDIR/tests/deploy/deploy_check.py"
if ! command -v promtool >/dev/null 2>&1; then
  not_ok "promtool" "promtool not installed (Debian package prometheus; ./bootstrap.sh installs it)"
  finish
  exit
fi
check "promtool check rules alerts.yml" promtool check rules "$P/alerts.yml"
check "promtool check config prometheus.yml" promtool check config "$P/prometheus.yml"
check "promtool test rules alerts_test.yml" promtool test rules "$P/alerts_test.yml"
if python3 "$CHECK" alerts "$P/alerts.yml" "$P/alerts_test.yml" >"$TMP/out" 2>"$TMP/err"; then
  ok "every alert has a firing and a quiet unit test"
else
  not_ok "every alert has a firing and a quiet unit test"
fi
# The unit tests bite: an alert whose threshold is wrong fails them.
mkdir -p "$TMP/mut"
cp "$P/alerts_test.yml" "$TMP/mut/"
sed 's/> (14.4 \* 0.001)/> (40 * 0.001)/' "$P/alerts.yml" >"$TMP/mut/alerts.yml"
if cmp -s "$P/alerts.yml" "$TMP/mut/alerts.yml"; then
  not_ok "negative control: the burn-rate threshold was found and changed"
elif promtool test rules "$TMP/mut/alerts_test.yml" >"$TMP/mut.out" 2>&1; then
  not_ok "negative control: a wrong fast-burn threshold fails the unit tests"
else
  ok "negative control: a wrong fast-burn threshold fails the unit tests"
fi
# The dashboard: JSON, a panel per item, every query valid PromQL (as recording rules).
if python3 "$CHECK" grafana "$FR_SRCDIR/deploy/grafana/fluxroute.json" "$TMP/dash_rules.yml" \
  >"$TMP/out" 2>"$TMP/err"; then
  ok "dashboard: panels and queries ($(grep -c '^ok' "$TMP/out") checks)"
else
  not_ok "dashboard: panels and queries" "$(grep -A3 '^not ok' "$TMP/out" | head -20)"
fi
check "promtool check rules: every dashboard query parses" promtool check rules "$TMP/dash_rules.yml"
finish
