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

# ---- the routes file: every error names the file, the place and the field ----------------
printf 'keys: []\n' >"$TMP/k.yaml"
printf 'providers:\n  - {id: openai, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:9/v1", api_key_env: ""}}\n' \
  >"$TMP/p.yaml"
bad_routes() { # NAME YAML EXPECTED-STDERR
  printf '%s\n' "$2" >"$TMP/r.yaml"
  fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/k.yaml" \
    --providers "$TMP/p.yaml" --routes "$TMP/r.yaml"
  expect_rc "routes file: $1" 2
  expect_err "routes file: $1" "$3"
}
bad_routes "unknown field" 'routes:
  - {name: a, targets: [{provider: openai}], retries: 3}' 'r.yaml:2:46: unknown field "retries" in a route'
bad_routes "unknown provider" 'routes:
  - {name: a, targets: [{provider: nope}]}' 'r.yaml:2:36: route "a": provider "nope" is not one of the server'"'"'s (--providers FILE)'
bad_routes "targets and pipeline" 'routes:
  - {name: a, targets: [{provider: openai}], pipeline: x.yaml}' 'r.yaml:2:5: route "a": give either targets or pipeline'
bad_routes "duplicate name" 'routes:
  - {name: a, targets: [{provider: openai}]}
  - {name: a, targets: [{provider: openai}]}' 'r.yaml:3:12: route "a" is defined twice'
bad_routes "a retry a manifest refuses" 'routes:
  - {name: a, targets: [{provider: openai}], retry: {max_attempts: 0}}' 'route "a": retry.max_attempts: must be between 1'
bad_routes "a bad timeout" 'routes:
  - {name: a, targets: [{provider: openai}], timeout: soon}' 'route "a": timeout: invalid duration "soon"'
rm -f "$TMP/r.yaml"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/k.yaml" --routes "$TMP/r.yaml"
expect_rc "routes file: missing" 2
expect_err "routes file: missing" "--routes $TMP/r.yaml: No such file or directory"
# The .mjs resolves `openai` from its own folder upwards: tests/node_modules.
FAKE_VENDOR="$FR_BUILDDIR/tests/fake_vendor" TMP="$TMP" \
  timeout 170 node "$FR_SRCDIR/tests/gateway/gateway.mjs" </dev/null || failed=$((failed + 1))
finish
