#!/bin/sh
# docs/reference.md against the code: every error class with its retry and breaker flags
# and its statuses (include/fluxroute/status.h), every effect kind the host records, and
# every field of real reports and traces (a run with retries, a fallback and a breaker
# transition, recorded).
. "${FR_SRCDIR:-.}/tests/lib.sh"
DOC="$FR_SRCDIR/docs/reference.md"
STATUS_H="$FR_SRCDIR/include/fluxroute/status.h"

# ---- error classes ---------------------------------------------------------------------
yn() { [ "$1" = 1 ] && echo yes || echo no; }
sed -n 's/^ *X(\([A-Z_]*\), \([01]\), \([01]\), "\([a-z_]*\)").*/\1 \2 \3 \4/p' "$STATUS_H" >"$TMP/classes"
check "status.h lists 23 classes" test "$(wc -l <"$TMP/classes")" -eq 23
while read -r cls retried breaker text; do
  row="| \`$text\` | $(yn "$retried") | $(yn "$breaker") |"
  check "class $text: retried $(yn "$retried"), breaker $(yn "$breaker")" grep -qF "$row" "$DOC"
  echo "$cls $text" >>"$TMP/class_names"
done <"$TMP/classes"
sed -n 's/^ *X(\([A-Z_]*\), -*[0-9]*, \([A-Z_]*\), [01], ".*/\1 \2/p' "$STATUS_H" >"$TMP/statuses"
check "status.h lists 29 statuses" test "$(wc -l <"$TMP/statuses")" -eq 29
while read -r name cls; do
  text=$(awk -v c="$cls" '$1 == c {print $2}' "$TMP/class_names")
  sym="FR_E_$name"
  [ "$name" = OK ] && sym=FR_OK
  check "status $sym is in the row of class $text" sh -c 'grep -F "| \`$1\` |" "$3" | grep -qF "\`$2\`"' sh "$text" "$sym" "$DOC"
done <"$TMP/statuses"

# ---- effect kinds the host records -----------------------------------------------------
effects_doc=$(sed -n '/^### Effects/,$p' "$DOC")
kinds=$(grep -rhoE 'fr__effect_new\("[a-z_]+"\)|record_(int|status)\([a-z]+, "[a-z_]+"' "$FR_SRCDIR/core" |
  sed 's/.*"\([a-z_]*\)".*/\1/' | sort -u)
check "the host records effect kinds" test -n "$kinds"
for k in $kinds; do
  check "effect kind $k is documented" sh -c 'echo "$1" | grep -q "^| .*\`$2\`.* |"' sh "$effects_doc" "$k"
done

# ---- fields of a real report and trace --------------------------------------------------
fr run "$FR_SRCDIR/tests/data/trace/fallback.yaml" --json --trace "$TMP/trace.json"
expect_rc "the fallback run succeeds" 0
cp "$TMP/out" "$TMP/report.json"
# Field names, leaving out what plugins and vendors choose (outputs, inputs, requests,
# responses).
fields() {
  jq -r '[paths(..) | map(select(type == "string"))
          | select((index("output") // index("input") // index("request") // index("response") // index("manifest_yaml")) == null)
          | .[-1]] | unique | .[]' "$1"
}
for f in $(fields "$TMP/report.json") $(fields "$TMP/trace.json"); do
  check "field $f is documented" grep -qF "\`$f\`" "$DOC"
done
# Fields the report and trace writers can emit, read from their sources.
for src in $(find "$FR_SRCDIR/core" -name report.c -o -name trace.c); do
  for f in $(grep -oE 'object_add\([a-z_>.-]+, "[a-z_0-9]+"' "$src" | sed 's/.*"\([a-z_0-9]*\)"/\1/' | sort -u); do
    check "field $f ($(basename "$src")) is documented" grep -qF "\`$f\`" "$DOC"
  done
done
finish
