#!/bin/sh
# The layer test: core/ keeps to the order of core/README.md's `layers:` line (includes
# and calls only go down, no call cycles between files).  tests/layers.py says more;
# `make check-layers` runs it alone and lists every violation.
exec python3 "${FR_SRCDIR:-.}/tests/layers.py" "${FR_SRCDIR:-.}" "${FR_BUILDDIR:-.}"
