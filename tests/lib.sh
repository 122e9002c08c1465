# Helpers for end-to-end tests of the fluxroute binary.  Each check prints one line;
# the script exits non-zero if any check failed.
# Environment (from make check): FLUXROUTE, FR_SRCDIR, FR_BUILDDIR.
set -u
: "${FLUXROUTE:?run through make check}"
FR_SRCDIR=${FR_SRCDIR:-.}
FR_BUILDDIR=${FR_BUILDDIR:-.}
DATA="$FR_SRCDIR/tests/data/e2e"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-e2e.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
unset REQUEST_ROLE FLUXROUTE_PLUGIN_PATH LOG_LEVEL
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $1"
  shift
  for line in "$@"; do echo "#   $line"; done
  if [ -s "$TMP/out" ]; then echo "#   stdout:"; sed 's/^/#     /' "$TMP/out" | head -40; fi
  if [ -s "$TMP/err" ]; then echo "#   stderr:"; sed 's/^/#     /' "$TMP/err" | head -40; fi
}

# fr ARGS...: runs fluxroute, capturing stdout, stderr and the exit code ($rc).
fr() {
  rc=0
  timeout 60 "$FLUXROUTE" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
}

expect_rc() { # NAME WANT
  if [ "$rc" = "$2" ]; then ok "$1: exit $2"; else not_ok "$1: exit $2" "got exit $rc"; fi
}

expect_out() { # NAME TEXT  (stdout contains TEXT)
  if grep -qF -- "$2" "$TMP/out"; then ok "$1: stdout has '$2'"; else not_ok "$1: stdout has '$2'"; fi
}

expect_err() { # NAME TEXT  (stderr contains TEXT)
  if grep -qF -- "$2" "$TMP/err"; then ok "$1: stderr has '$2'"; else not_ok "$1: stderr has '$2'"; fi
}

expect_no_err() { # NAME TEXT  (stderr does not contain TEXT)
  if grep -qF -- "$2" "$TMP/err"; then not_ok "$1: stderr lacks '$2'"; else ok "$1: stderr lacks '$2'"; fi
}

expect_jq() { # NAME FILTER  (FILTER is true on stdout's JSON)
  local v
  v=$(jq -e "$2" "$TMP/out" 2>&1) && [ "$v" != false ] && [ "$v" != null ] &&
    { ok "$1: $2"; return; }
  not_ok "$1: $2" "jq said: $v"
}

check() { # NAME COMMAND...: ok when the command succeeds
  local name=$1
  shift
  if "$@" >"$TMP/check.out" 2>&1; then ok "$name"; else not_ok "$name" "$(head -20 "$TMP/check.out")"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
