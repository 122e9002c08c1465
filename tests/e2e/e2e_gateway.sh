#!/bin/sh
# The OpenAI-compatible gateway (issue 27) through the official `openai` npm client:
# tests/gateway/gateway.mjs starts tests/fake_vendor, a vendor that always fails and
# serve with a routes file, and covers plain and streamed completions, tool calls over two
# turns on the three vendors, fallback, a mid-stream failure, 401/403/404/400/429, the
# models list, a pipeline route, SIGHUP and the offline replay of gateway traces.
. "${FR_SRCDIR:-.}/tests/lib.sh"
NODE_MODULES="$FR_SRCDIR/tests/node_modules"
if ! command -v node >/dev/null 2>&1 || [ ! -d "$NODE_MODULES/openai" ]; then
  echo "not ok - the gateway test needs node and tests/node_modules (run: npm ci --prefix tests)"
  exit 1
fi
mkdir -p "$TMP/m"
# The .mjs resolves `openai` from its own folder upwards: tests/node_modules.
FAKE_VENDOR="$FR_BUILDDIR/tests/fake_vendor" TMP="$TMP" \
  timeout 170 node "$FR_SRCDIR/tests/gateway/gateway.mjs" </dev/null
