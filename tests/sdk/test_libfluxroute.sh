#!/bin/sh
# The installed embedding library is the engine part only: libfluxroute.so needs none of
# libmicrohttpd, sqlite3 and hiredis (serve, the control plane and the Redis lease backend
# are linked into the fluxroute command, not into the library), and it is complete: no
# internal symbol is left for another part to define.
. "${FR_SRCDIR:-.}/tests/lib.sh"
LIB="$FR_BUILDDIR/.libs/libfluxroute.so"

if [ ! -f "$LIB" ]; then
  not_ok "libfluxroute built" "$LIB not found"
  finish
  exit
fi
if command -v readelf >/dev/null 2>&1; then
  readelf -d "$LIB" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' > "$TMP/needed"
else
  objdump -p "$LIB" | awk '$1 == "NEEDED" {print $2}' > "$TMP/needed"
fi
if [ -s "$TMP/needed" ]; then ok "libfluxroute's NEEDED entries read"; else not_ok "libfluxroute's NEEDED entries read"; fi
for dep in libmicrohttpd libsqlite3 libhiredis; do
  if grep -q "^$dep\." "$TMP/needed"; then
    not_ok "libfluxroute does not need $dep" "NEEDED: $(grep "^$dep\." "$TMP/needed")"
  else
    ok "libfluxroute does not need $dep"
  fi
done
# Internal symbols (fr__*) the library uses but does not define: the engine part calls
# into a part that is not in it.
nm -D --undefined-only "$LIB" | awk '{print $NF}' | grep '^fr_' > "$TMP/undef" || true
if [ -s "$TMP/undef" ]; then
  not_ok "libfluxroute defines every fr_ symbol it uses" $(cat "$TMP/undef")
else
  ok "libfluxroute defines every fr_ symbol it uses"
fi
finish
