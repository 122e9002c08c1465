#!/bin/sh
# The web console (/ui/) in a real browser: tests/console/console.mjs drives Debian's
# headless Chromium with puppeteer-core (tests/package.json) against `fluxroute serve`
# on a loopback port: login (and a wrong key), the runs list, the DAG, the attempt
# timeline, compare, a live run, bad content shown as text, a viewer key.  Screenshots of
# every page land in tests/console/screenshots/ of the build tree (git-ignored) for review.
# Without /usr/bin/chromium (FR_CHROMIUM overrides it) the test is skipped, saying so;
# bootstrap.sh installs the package, so CI always runs it.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"

CHROMIUM=${FR_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "1..0 # SKIP the web console's browser tests: no $CHROMIUM (apt-get install chromium, or ./bootstrap.sh as root)"
  echo "e2e_console.sh: SKIPPED: no $CHROMIUM, the web console was not tested in a browser" >&2
  exit 77
fi
if [ ! -d "$FR_SRCDIR/tests/node_modules/puppeteer-core" ]; then
  not_ok "puppeteer-core is installed" "tests/node_modules/puppeteer-core is missing: run ./bootstrap.sh (npm ci --prefix tests)"
  finish
  exit 1
fi

mkdir -p "$TMP/m" "$TMP/profile"
cp "$FR_SRCDIR"/tests/data/console/*.yaml "$TMP/m/"
rm "$TMP/m/providers.yaml"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha console-op-key), tenant: acme, namespace: acme, role: operator}
  - {id: acme-viewer, sha256: $(sha console-viewer-key), tenant: acme, namespace: acme, role: viewer}
YAML
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos \
  --providers "$FR_SRCDIR/tests/data/console/providers.yaml" || exit 1

SHOTS="$FR_BUILDDIR/tests/console/screenshots"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
rc=0
SERVE_URL="$SERVE_URL" OP_KEY=console-op-key VIEWER_KEY=console-viewer-key CHROMIUM="$CHROMIUM" \
  SHOTS="$SHOTS" PROFILE="$TMP/profile" HOME="$TMP" \
  timeout 170 node "$FR_SRCDIR/tests/console/console.mjs" || rc=$?
if [ "$rc" = 0 ]; then ok "the console in a browser (screenshots: $SHOTS)"; else
  not_ok "the console in a browser" "console.mjs exited $rc" "serve's stderr: $(tail -20 "$TMP/serve.err")"; fi
finish
