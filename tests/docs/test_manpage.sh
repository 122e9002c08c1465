#!/bin/sh
# The man page against the binary: every command `fluxroute --help` lists has an entry in
# docs/fluxroute.1, every option a command's --help shows appears in the page, FILES names
# every built-in plugin, and no macro line loses its quotes in rendering (a '"' inside a
# macro's argument ends or starts an argument: write \(dq).  With groff installed, the
# pages also render without warnings.
. "${FR_SRCDIR:-.}/tests/lib.sh"
PAGE="$FR_SRCDIR/docs/fluxroute.1"
# The page as plain text: roff's \- is a hyphen.
sed 's/\\-/-/g' "$PAGE" >"$TMP/page"

fr --help
commands=$(awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}' "$TMP/out")
check "--help lists commands" test -n "$commands"
for c in $commands; do
  check "man page has an entry for $c" grep -q "^\.B $c\( \|$\)" "$TMP/page"
  # Subcommands: plugins list/info/test and keys new have help pages of their own.
  helps="$c"
  case $c in
  plugins) helps="plugins_list plugins_info plugins_test" ;;
  keys) helps="keys_new" ;;
  esac
  for h in $helps; do
    # shellcheck disable=SC2046
    fr $(echo "$h" | tr _ ' ') --help
    for o in $(grep -o -- '--[a-z][a-z0-9-]*\|\[-[a-z] ' "$TMP/out" | tr -d '[ ' | sort -u); do
      [ "$o" = --help ] && continue
      check "man page documents $(echo "$h" | tr _ ' ') $o" grep -q -- "$o\b" "$TMP/page"
    done
  done
done

# FILES names every built-in plugin.
files_line=$(grep -A1 '^\.I PREFIX/lib/fluxroute/plugins' "$TMP/page" | tail -1)
# A plugin's source defines the entry point; plugins/ also holds the helpers they share.
for src in $(grep -l '^FR_PLUGIN_EXPORT const fr_plugin \*fluxroute_plugin_v1' "$FR_SRCDIR"/plugins/*.c); do
  p=$(basename "$src" .c)
  check "FILES names the built-in plugin $p" sh -c 'echo "$1" | grep -qw "$2"' sh "$files_line" "$p"
done

# Quotes in macro lines: a '"' between two non-blank characters is lost by roff.
for page in "$FR_SRCDIR/docs/fluxroute.1" "$FR_SRCDIR/docs/fluxroute-plugin.7"; do
  bad=$(grep -n '^\.[A-Za-z]' "$page" | grep '[^ ]"[^ ]' | grep -v '^[0-9]*:\.\\"' || true)
  check "$(basename "$page"): no quotes lost in macro lines" test -z "$bad"
  [ -n "$bad" ] && echo "# $bad"
  if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -ww -z "$page" 2>"$TMP/groff.err"
    check "$(basename "$page"): groff renders it without warnings" test ! -s "$TMP/groff.err"
    [ -s "$TMP/groff.err" ] && sed 's/^/# /' "$TMP/groff.err"
  fi
done
finish
