#!/bin/sh
# The symbol ledger: libfluxroute exports exactly the symbols listed in docs/symbols.txt.
. "${FR_SRCDIR:-.}/tests/lib.sh"
LIB="$FR_BUILDDIR/.libs/libfluxroute.so"
LEDGER="$FR_SRCDIR/docs/symbols.txt"

if [ ! -f "$LIB" ]; then
  not_ok "libfluxroute built" "$LIB not found"
  finish
  exit
fi
# Defined dynamic symbols; linker-made markers (_init, _edata, ...) are not API.
nm -D --defined-only "$LIB" | awk '{print $NF}' | sed 's/@.*//' |
  grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u > "$TMP/exported"
grep -Ev '^[[:space:]]*(#|$)' "$LEDGER" | sort -u > "$TMP/ledger"

extra=$(comm -23 "$TMP/exported" "$TMP/ledger")
missing=$(comm -13 "$TMP/exported" "$TMP/ledger")
if [ -z "$extra" ]; then
  ok "every exported symbol is in docs/symbols.txt"
else
  not_ok "every exported symbol is in docs/symbols.txt" "not in the ledger:" $extra
fi
if [ -z "$missing" ]; then
  ok "every ledger symbol is exported"
else
  not_ok "every ledger symbol is exported" "listed but not exported:" $missing
fi
if [ "$(wc -l < "$TMP/exported")" -gt 0 ]; then ok "the library exports symbols"; else not_ok "the library exports symbols"; fi
finish
