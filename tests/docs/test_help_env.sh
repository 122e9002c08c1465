#!/bin/sh
# --help of serve, worker and controlplane lists every environment variable the sources
# read (tests/docs/help_env.py has the patterns and the per-command exceptions, with their
# reasons): deploy/ checks what it sets against --help, so the two cannot drift.
. "${FR_SRCDIR:-.}/tests/lib.sh"
if python3 "$FR_SRCDIR/tests/docs/help_env.py" "$FR_SRCDIR" "$FLUXROUTE" >"$TMP/out" 2>"$TMP/err"; then
  ok "every variable read is in --help ($(grep -c '^ok' "$TMP/out") checks)"
else
  grep -v '^ok' "$TMP/out"
  not_ok "every variable read is in --help"
fi
finish
