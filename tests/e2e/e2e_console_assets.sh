#!/bin/sh
# The web console's assets (issue 28), without a browser (tests/e2e/e2e_console.sh drives
# one): served by `fluxroute serve` at /ui as ONE page (the CSS and the bundled modules
# inline: no module waterfall on the first load), with the security headers (a CSP that
# allows no inline script or style but that page's own, by their sha256, and
# frame-ancestors 'none', nosniff), the right content types, ETags and 304s, 404 and 405
# as JSON errors, no key needed; the sources hold no style= attribute, load nothing from
# another origin, never write HTML from data (no innerHTML, no document.write, no eval),
# stay under 250 KB, and the generator that embeds them is deterministic and refuses an
# unknown extension, an import it cannot bundle and a script that would end its element.
# 127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
C="$FR_SRCDIR/core/serve/console"
mkdir -p "$TMP/m"
cp "$FR_SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
cat >"$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha op-key-1), tenant: acme, namespace: acme, role: operator}
YAML
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1

# ---- the assets as files ------------------------------------------------------------------
names=$(sed -n '/^FR_CONSOLE_ASSETS = /,/[^\\]$/p' "$FR_SRCDIR/core/serve/serve.am" |
  sed -e 's/^FR_CONSOLE_ASSETS = //' -e 's/\\$//' | tr -s ' \t' '\n' | grep .)
listed=$(echo "$names" | wc -l)
present=$(ls "$C" | wc -l)
check "serve.am lists every file of core/serve/console/ ($listed of $present)" [ "$listed" = "$present" ]
check "serve.am keeps the list sorted" sh -c "echo '$names' | LC_ALL=C sort -c"
total=$(cat "$C"/* | wc -c)
check "the console is under 250 KB uncompressed ($total bytes)" [ "$total" -lt 256000 ]
check "the source index.html names its one module (the generator inlines it)" \
  sh -c "[ \$(grep -ic '<script' '$C/index.html') = 1 ] && grep -q '^<script type=\"module\" src=\"/ui/app.js\"></script>\$' '$C/index.html'"
check "no inline style in the sources (no <style>, no style= attribute)" \
  sh -c "! grep -il '<style\|style=' '$C'/*.html '$C'/*.js '$C'/*.svg"
check "no HTML written from data: no innerHTML, outerHTML, insertAdjacentHTML, document.write, eval" \
  sh -c "! grep -n 'innerHTML\|outerHTML\|insertAdjacentHTML\|document\.write\|eval(\|new Function' '$C'/*.js"
check "nothing from another origin (no http:// or https:// but the SVG namespace)" \
  sh -c "! grep -n 'https\?://' '$C'/* | grep -v 'http://www.w3.org/2000/svg'"
check "the key goes to sessionStorage, never localStorage" \
  sh -c "grep -q sessionStorage '$C/api.js' && ! grep -q localStorage '$C'/*.js"

# ---- the generator ----------------------------------------------------------------------
# shellcheck disable=SC2086
sh "$FR_SRCDIR/core/serve/console_embed.sh" "$TMP/a.c" "$C" $names
# shellcheck disable=SC2086
sh "$FR_SRCDIR/core/serve/console_embed.sh" "$TMP/b.c" "$C" $names
check "console_embed.sh is deterministic (two runs, the same bytes)" cmp "$TMP/a.c" "$TMP/b.c"
check "console_embed.sh writes what the build compiled" cmp "$TMP/a.c" "$FR_BUILDDIR/core/serve/console_assets.c"
cp "$C/icon.svg" "$TMP/x.exe"
rc=0
sh "$FR_SRCDIR/core/serve/console_embed.sh" "$TMP/c.c" "$TMP" x.exe 2>"$TMP/err" || rc=$?
check "console_embed.sh refuses an extension it has no type for" [ "$rc" != 0 ]
check "... and names the file" grep -q 'x.exe: no content type' "$TMP/err"
# What the bundler cannot rewrite fails the build, naming the file and line.
bad_bundle() { # NAME FILE-TEXT EXPECTED-ERROR: a console whose x.js (imported by app.js) holds FILE-TEXT
  rm -rf "$TMP/bad" && mkdir "$TMP/bad" && cp "$C"/* "$TMP/bad/"
  printf '%s\n' "$2" >"$TMP/bad/x.js"
  { echo "import {x} from './x.js';" && cat "$C/app.js"; } >"$TMP/bad/app.js"
  # shellcheck disable=SC2086
  rc=0 && sh "$FR_SRCDIR/core/serve/console_embed.sh" "$TMP/bad.c" "$TMP/bad" $names x.js 2>"$TMP/err" || rc=$?
  check "console_embed.sh refuses $1" sh -c "[ $rc != 0 ] && grep -q '$3' '$TMP/err'"
}
bad_bundle "a dynamic import()" "const p = import('./ui.js');" 'x.js:1: import or export where'
bad_bundle "export default" "export default 1;" 'x.js:1: an export the bundler'
bad_bundle "an import from elsewhere" "import {h} from '/ui/ui.js';" 'x.js:1: an import the bundler'
bad_bundle "an import of a file that is not an asset" "import {h} from './nope.js';" 'x.js imports ./nope.js, which is not a console asset'
bad_bundle "a script that would end its element" "const t = '</script>';" 'would break out'
bad_bundle "modules that import each other" "import {h} from './app.js';
export const x = 1;" 'in a cycle: app x app'
rm -f "$TMP/bad/x.js"
printf 'export const y = 1;\n' >"$TMP/bad/y.js"
cp "$C/app.js" "$TMP/bad/app.js"
# shellcheck disable=SC2086
rc=0 && sh "$FR_SRCDIR/core/serve/console_embed.sh" "$TMP/bad.c" "$TMP/bad" $names y.js 2>"$TMP/err" || rc=$?
check "console_embed.sh refuses a module nothing imports" sh -c "[ $rc != 0 ] && grep -q 'y.js: app.js does not import it' '$TMP/err'"

# ---- served -------------------------------------------------------------------------------
hdr() { grep -i "^$1:" "$TMP/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
req GET /ui
expect_code "GET /ui without a key" 200
check "/ui is the page" grep -q '<form id="login"' "$TMP/out"
check "/ui: text/html" [ "$(hdr Content-Type)" = "text/html; charset=utf-8" ]
csp=$(hdr Content-Security-Policy)
check "/ui: a CSP with default-src 'none'" sh -c "echo \"$csp\" | grep -q \"default-src 'none'\""
check "/ui: scripts and styles by hash only (not 'self', no unsafe-inline, no unsafe-eval, no host)" \
  sh -c "echo \"$csp\" | grep -q \"script-src 'sha256-[A-Za-z0-9+/]*='; style-src 'sha256-[A-Za-z0-9+/]*=';\" && ! echo \"$csp\" | grep -q \"unsafe\\|http\\|\\*\""
check "/ui: frame-ancestors 'none'" sh -c "echo \"$csp\" | grep -q \"frame-ancestors 'none'\""
check "/ui: connect-src 'self' (the page asks its own origin only)" sh -c "echo \"$csp\" | grep -q \"connect-src 'self'\""
check "/ui: X-Content-Type-Options nosniff" [ "$(hdr X-Content-Type-Options)" = nosniff ]
check "/ui: X-Frame-Options DENY" [ "$(hdr X-Frame-Options)" = DENY ]
check "/ui: Referrer-Policy no-referrer" [ "$(hdr Referrer-Policy)" = no-referrer ]
etag=$(hdr ETag)
check "/ui: an ETag" [ -n "$etag" ]
req GET /ui/ ""
expect_code "GET /ui/" 200
check "/ui/ is the same page" grep -q '<form id="login"' "$TMP/out"
req GET /ui "" -H "If-None-Match: $etag"
expect_code "GET /ui with its ETag" 304
check "304: no body" [ ! -s "$TMP/out" ]
req GET /ui/icon.svg
expect_code "GET /ui/icon.svg" 200
check "/ui/icon.svg: image/svg+xml" sh -c "grep -qi '^Content-Type: image/svg+xml' '$TMP/headers'"
check "/ui/icon.svg: the file's bytes" cmp "$TMP/out" "$C/icon.svg"
check "/ui/icon.svg: its CSP and nosniff" sh -c "grep -qi '^Content-Security-Policy: default-src' '$TMP/headers' && grep -qi '^X-Content-Type-Options: nosniff' '$TMP/headers'"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "$SERVE_URL/ui/icon.svg")
check "HEAD /ui/icon.svg: 200" [ "$code" = 200 ]

# ---- one page: the styles and every module inline, pinned by the CSP ----------------------
curl -s -o "$TMP/page.html" "$SERVE_URL/ui"
for f in app.js api.js runs.js console.css; do
  req GET "/ui/$f"
  expect_code "/ui/$f is not served on its own (it is in the page)" 404
done
check "the page has one <script>: inline, in <head> (it asks for the runs before the body is parsed)" \
  sh -c "[ \$(grep -io '<script' '$TMP/page.html' | wc -l) = 1 ] && sed -n '/^<script>/,\$p' '$TMP/page.html' | grep -q '^</head>'"
check "the page has one <style>, and links no stylesheet, module or preload" \
  sh -c "[ \$(grep -io '<style' '$TMP/page.html' | wc -l) = 1 ] && ! grep -qi '<link rel=\"\(stylesheet\|modulepreload\|preload\)' '$TMP/page.html'"
# No module waterfall: nothing in the page imports or fetches a script.
no_imports() { ! grep -n -e '^import ' -e '[^A-Za-z0-9_$.]import(' -e "\\.js['\"]" "$TMP/page.html"; }
check "no module waterfall: the page imports nothing (no import statement, no import(), no .js)" no_imports
all_bundled() {
  for m in $(ls "$C" | sed -n 's/\.js$//p'); do
    grep -q "^const m_$m = " "$TMP/page.html" || { echo "no $m.js in the page"; return 1; }
  done
}
check "every module of the console is in the page" all_bundled
# The modules run in the order an ES module graph runs them: boot.js (app.js's first
# import) right after what it imports, so its request leaves before the other pages load.
order=$(sed -n 's|^// ---- \(.*\)\.js$|\1|p' "$TMP/page.html" | tr '\n' ' ')
check "the modules in ES evaluation order, boot.js 4th, app.js last ($order)" \
  sh -c "echo '$order' | grep -q '^api ui runs boot .* app \$'"
# The CSP's hashes are those of the page's script and style (computed here by python3,
# not by the generator's awk): anything else inline is refused by the browser.
hashes=$(python3 - "$TMP/page.html" <<'PY'
import base64, hashlib, re, sys
page = open(sys.argv[1], "rb").read()
def h(tag):
    m = re.findall(rb"<" + tag + rb"[^>]*>(.*?)</" + tag + rb">", page, re.S)
    assert len(m) == 1, tag
    return "'sha256-" + base64.b64encode(hashlib.sha256(m[0]).digest()).decode() + "'"
print("script-src %s; style-src %s;" % (h(b"script"), h(b"style")))
PY
)
check "the CSP allows exactly the page's script and style, by sha256 ($hashes)" \
  sh -c "[ -n \"$hashes\" ] && echo \"$csp\" | grep -qF \"$hashes\""
req GET /ui/nope.js
expect_code "an unknown asset" 404
expect_jq "an unknown asset: not_found naming it" '.error.code == "not_found" and (.error.message | test("/ui/nope.js"))'
check "the 404 carries the CSP too" grep -qi '^Content-Security-Policy:' "$TMP/headers"
req GET /ui/../keys.yaml "" --path-as-is
expect_code "/ui/../keys.yaml sent as is: no asset (nothing is read from disk)" 404
req POST /ui/icon.svg '{}'
expect_code "POST to an asset" 405
check "405: Allow GET, HEAD" grep -qi '^Allow: GET, HEAD' "$TMP/headers"
expect_jq "405: method_not_allowed" '.error.code == "method_not_allowed"'
# The API the page calls still wants the key.
req GET /v1/runs
expect_code "the API without a key" 401
req GET /v1/runs "" -H "Authorization: Bearer op-key-1"
expect_code "the API with the key" 200
stop_serve

# ---- mTLS: where client certificates are required, the console needs one too ----------------
if command -v certtool >/dev/null 2>&1; then
  mk() { # NAME SIGNER TEMPLATE-LINES: a key and a certificate (self-signed without SIGNER)
    printf '%b' "$3" >"$TMP/$1.tmpl"
    certtool --generate-privkey --key-type=ecdsa --outfile "$TMP/$1.key" || return 1
    if [ -z "$2" ]; then
      certtool --generate-self-signed --load-privkey "$TMP/$1.key" --template "$TMP/$1.tmpl" --outfile "$TMP/$1.pem"
    else
      certtool --generate-certificate --load-privkey "$TMP/$1.key" --load-ca-certificate "$TMP/$2.pem" \
        --load-ca-privkey "$TMP/$2.key" --template "$TMP/$1.tmpl" --outfile "$TMP/$1.pem"
    fi
  }
  { mk ca "" 'cn = "console CA"\nca\ncert_signing_key\nexpiration_days = 2\n' &&
    mk srv ca 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' &&
    mk cli ca 'cn = "acme-client"\ntls_www_client\nsigning_key\nexpiration_days = 2\n'; } >"$TMP/certtool.log" 2>&1 ||
    not_ok "certtool made the test certificates" "$(tail -5 "$TMP/certtool.log")"
  ROUTER_TLS_ENABLED=true ROUTER_TLS_CERT_FILE="$TMP/srv.pem" ROUTER_TLS_KEY_FILE="$TMP/srv.key" \
    ROUTER_TLS_CA_FILE="$TMP/ca.pem" ROUTER_TLS_REQUIRE_CLIENT_CERT=true \
    start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1
  req GET /ui "" --cacert "$TMP/ca.pem"
  expect_code "mTLS required: /ui without a client certificate" 401
  expect_jq "mTLS required: client_cert_required" '.error.code == "client_cert_required"'
  req GET /ui "" --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key"
  expect_code "mTLS required: /ui with the client certificate" 200
  check "mTLS: the page, with its CSP" grep -qi '^Content-Security-Policy:' "$TMP/headers"
  stop_serve
else
  echo "ok - mTLS and the console # SKIP no certtool (gnutls-bin)"
fi
finish
