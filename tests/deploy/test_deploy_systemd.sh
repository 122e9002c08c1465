#!/bin/sh
# deploy/systemd: `systemd-analyze verify` passes on the units once their ExecStart
# points at a `make install DESTDIR=...` copy (verify checks that the program exists;
# MANPATH lets it find the installed man page the units' Documentation= names), and fails
# when it does not exist (so the check is real here); deploy_check.py holds each unit's
# sandboxing and its arguments and environment file against `fluxroute ... --help`.
. "${FR_SRCDIR:-.}/tests/lib.sh"
CHECK="$FR_SRCDIR/tests/deploy/deploy_check.py"
S="$FR_SRCDIR/deploy/systemd"
if python3 "$CHECK" systemd "$FLUXROUTE" "$FR_SRCDIR/deploy/k8s/providers.yaml" "$S"/*.service \
  >"$TMP/check.txt" 2>&1; then
  ok "systemd: the units' sandboxing, arguments and environment ($(grep -c '^ok' "$TMP/check.txt") checks)"
else
  not_ok "systemd: the units' sandboxing, arguments and environment" "$(grep -A4 '^not ok\|Traceback' "$TMP/check.txt" | head -30)"
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  not_ok "systemd-analyze" "systemd-analyze not installed (Debian package systemd)"
  finish
  exit
fi
D="$TMP/dest"
if ! ${MAKE:-make} -s -C "$FR_BUILDDIR" install DESTDIR="$D" >"$TMP/install.log" 2>&1; then
  not_ok "make install DESTDIR=..." "$(tail -5 "$TMP/install.log")"
  finish
  exit
fi
bin=$(find "$D" -path '*/bin/fluxroute' -type f | head -1)
man=$(dirname "$(dirname "$(find "$D" -name fluxroute.1 | head -1)")")
[ -x "$bin" ] && ok "make install DESTDIR=... installs fluxroute" || not_ok "make install DESTDIR=... installs fluxroute"
mkdir -p "$TMP/units" "$TMP/bad"
for u in "$S"/*.service; do
  sed "s|^ExecStart=[^ ]*fluxroute |ExecStart=$bin |" "$u" >"$TMP/units/$(basename "$u")"
  sed "s|^ExecStart=[^ ]*fluxroute |ExecStart=$D/no/such/fluxroute |" "$u" >"$TMP/bad/$(basename "$u")"
done
for u in "$TMP"/units/*.service; do
  n=$(basename "$u")
  if MANPATH="$man" systemd-analyze verify "$u" >"$TMP/verify.out" 2>&1 && ! [ -s "$TMP/verify.out" ]; then
    ok "systemd-analyze verify $n"
  else
    not_ok "systemd-analyze verify $n" "$(head -10 "$TMP/verify.out")"
  fi
  if MANPATH="$man" systemd-analyze verify "$TMP/bad/$n" >/dev/null 2>&1; then
    not_ok "negative control: verify fails when $n's ExecStart does not exist"
  else
    ok "negative control: verify fails when $n's ExecStart does not exist"
  fi
done
finish
