#!/bin/sh
# The symbol ledger: libfluxroute exports exactly the symbols listed in docs/symbols.txt.
# Every built-in plugin exports only fluxroute_plugin_v1: the plugin kit and the helpers
# linked into it (frk_, pu_, pv_) stay hidden, so they never interpose with the host.
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

n=0
for so in "$FR_BUILDDIR"/plugins/.libs/*.so; do
  [ -f "$so" ] || continue
  n=$((n + 1))
  name=$(basename "$so")
  exported=$(nm -D --defined-only "$so" | awk '{print $NF}' | sed 's/@.*//' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | tr '\n' ' ')
  if [ "$exported" = "fluxroute_plugin_v1 " ]; then ok "$name exports only fluxroute_plugin_v1"
  else not_ok "$name exports only fluxroute_plugin_v1" "exports: $exported"; fi
  # and binds none of the kit's symbols dynamically (hidden, so never interposed)
  dyn=$(nm -D "$so" | awk '{print $NF}' | grep -E '^(frk_|pu_|pv_|fr_)' | tr '\n' ' ')
  if [ -z "$dyn" ]; then ok "$name: no frk_/pu_/pv_/fr_ dynamic symbols"
  else not_ok "$name: no frk_/pu_/pv_/fr_ dynamic symbols" "$dyn"; fi
done
if [ "$n" -ge 7 ]; then ok "the built-in plugins were checked ($n)"; else not_ok "the built-in plugins were checked" "found $n"; fi
if grep -q '^frk_' "$TMP/exported"; then not_ok "libfluxroute carries no kit symbol"; else ok "libfluxroute carries no kit symbol"; fi
finish
