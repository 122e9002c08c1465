#!/bin/sh
# Writes the C file that holds the web console (core/serve/console/) as served:
# `console_embed.sh OUT.c SRCDIR NAME...`.  Run by make; deterministic (the same files
# give the same bytes: no dates, no paths).  Only POSIX sh, awk, od, cksum, sed and tr,
# plus sha256sum (or shasum): no front-end build step and no compiler for the host.
#
# The page loads as ONE document (the first load is what issue 28 times): the source
# stays plain ES modules and CSS, and this script writes index.html with
#   - every stylesheet it links (<link rel="stylesheet" href="/ui/X.css">) inlined as one
#     <style>;
#   - its one module script (<script type="module" src="/ui/ENTRY.js">, in <head>) replaced
#     by one inline classic script holding every .js file, bundled in a strict-mode block:
#     each module becomes `const m_NAME = (() => { ...; return {exports}; })();`, in
#     dependency order (so ENTRY, last, runs before the body is parsed: it can ask for the
#     first page's data at once, and waits for DOMContentLoaded to draw), its
#     `import {a, b as c} from './x.js';` lines becoming `const {a, b: c} = m_x;` and its
#     `export ` keywords dropped.  Any other import or export form (dynamic import(),
#     export default, export let, re-exports) fails the build, naming file and line;
#   - and fr__console_csp, the Content-Security-Policy that allows exactly that script
#     and that style by their sha256 (nothing else inline, nothing from elsewhere).
# The .js and .css files are not served on their own; the other assets (icon.svg) are.
# Each served asset gets its content type from its extension and an ETag from its size
# and CRC (POSIX cksum).
set -eu
out=$1
src=$2
shift 2
tmp="$out.tmp"
work="$out.d"
LC_ALL=C
export LC_ALL
die() {
  echo "console_embed.sh: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work" "$tmp"' EXIT

# sha256_b64 FILE: the file's SHA-256 in base64, as a CSP hash source wants it.
sha256_b64() {
  if command -v sha256sum >/dev/null 2>&1; then
    hex=$(sha256sum <"$1")
  elif command -v shasum >/dev/null 2>&1; then
    hex=$(shasum -a 256 <"$1")
  else
    die "no sha256sum or shasum to hash the inline script and style with"
  fi
  echo "${hex%% *}" | awk '
  BEGIN { b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; x = "0123456789abcdef" }
  {
    n = length($0) / 2
    for (i = 0; i < n; i++)
      v[i] = (index(x, substr($0, 2 * i + 1, 1)) - 1) * 16 + index(x, substr($0, 2 * i + 2, 1)) - 1
    s = ""
    for (i = 0; i < n; i += 3) {
      w = v[i] * 65536 + (i + 1 < n ? v[i + 1] * 256 : 0) + (i + 2 < n ? v[i + 2] : 0)
      s = s substr(b, int(w / 262144) % 64 + 1, 1) substr(b, int(w / 4096) % 64 + 1, 1)
      s = s (i + 1 < n ? substr(b, int(w / 64) % 64 + 1, 1) : "=")
      s = s (i + 2 < n ? substr(b, w % 64 + 1, 1) : "=")
    }
    print s
  }'
}

type_of() {
  case "$1" in
  *.html) echo "text/html; charset=utf-8" ;;
  *.svg) echo "image/svg+xml" ;;
  *.txt) echo "text/plain; charset=utf-8" ;;
  *) die "$1: no content type for this extension" ;;
  esac
}

# ---- the modules, in dependency order ---------------------------------------------------
modules=""
others=""
for name in "$@"; do
  [ -f "$src/$name" ] || die "$name: no such file in $src"
  case "$name" in
  *.js)
    m=${name%.js}
    case "$m" in *[!a-z0-9_]*) die "$name: a module's name must be [a-z0-9_] (it becomes m_$m)" ;; esac
    modules="$modules $m"
    ;;
  *.css) ;; # inlined where index.html links it
  index.html) ;;
  *)
    type_of "$name" >/dev/null
    others="$others $name"
    ;;
  esac
done
deps() { sed -n "s/^import {[^}]*} from '\.\/\([^']*\)\.js';\$/\1/p" "$src/$1.js"; }

# Each module rewritten on its own first (what cannot be bundled fails here, naming file
# and line), into $work/m_NAME.js.
for m in $modules; do
  for d in $(deps "$m"); do
    case " $modules " in *" $d "*) ;; *) die "$m.js imports ./$d.js, which is not a console asset" ;; esac
  done
  {
    echo "// ---- $m.js"
    echo "const m_$m = (() => {"
    awk -v file="$m.js" '
    function fail(why) {
      printf "console_embed.sh: %s:%d: %s\n", file, NR, why > "/dev/stderr"
      bad = 1
      exit 1
    }
    /^import / {
      if ($0 !~ /^import \{[^}]*\} from '\''\.\/[a-z0-9_]+\.js'\'';$/)
        fail("an import the bundler does not take (only: import {a, b as c} from '\''./x.js'\'';)")
      names = $0
      sub(/^import \{ */, "", names)
      sub(/ *\} from .*$/, "", names)
      gsub(/ as /, ": ", names)
      from = $0
      sub(/^.* from '\''\.\//, "", from)
      sub(/\.js'\'';$/, "", from)
      print "const {" names "} = m_" from ";"
      next
    }
    /^export / {
      if ($0 !~ /^export (async function|function|class|const) [A-Za-z_$][A-Za-z0-9_$]*/)
        fail("an export the bundler does not take (only: export [async] function, class, const)")
      line = substr($0, 8)
      name = line
      sub(/^(async function|function|class|const) /, "", name)
      sub(/[^A-Za-z0-9_$].*$/, "", name)
      exported[++n] = name
      print line
      next
    }
    /^[ \t]*\/\// { print; next } # a comment may say "import"
    /(^|[^A-Za-z0-9_$.])(import|export)[ ({]/ { fail("import or export where the bundler cannot rewrite it") }
    { print }
    END {
      if (bad)
        exit 1
      s = ""
      for (i = 1; i <= n; i++)
        s = s (i > 1 ? ", " : "") exported[i]
      print "return {" s "};"
    }' "$src/$m.js"
    echo "})();"
  } >"$work/m_$m.js"
  # Nothing in the bundle may end its element early or open a comment.
  if grep -in '</script\|<!--\|<script' "$work/m_$m.js" >&2; then
    die "$m.js holds </script, <script or <!-- (would break out of the inline script)"
  fi
done

# The order an ES module graph is evaluated in: depth first from the entry (the module
# index.html names), each module after the ones it imports, in the order it imports them.
# So app.js's first imports run first: what the first page needs is asked for early.
entry=$(sed -n 's|^<script type="module" src="/ui/\([a-z0-9_]*\)\.js"></script>$|\1|p' "$src/index.html" 2>/dev/null) ||
  die "index.html: no such file in $src"
[ "$(echo "$entry" | grep -c .)" = 1 ] ||
  die "index.html: it needs exactly one <script type=\"module\" src=\"/ui/NAME.js\"></script> line"
order=""
visiting=""
visit() { # MODULE: appends it to $order after its imports
  case " $order " in *" $1 "*) return 0 ;; esac
  case " $visiting " in *" $1 "*) die "the modules import each other in a cycle:$visiting $1" ;; esac
  visiting="$visiting $1"
  for d in $(deps "$1"); do visit "$d"; done
  visiting=${visiting% "$1"}
  order="$order $1"
}
case " $modules " in *" $entry "*) ;; *) die "index.html: /ui/$entry.js is not a console asset" ;; esac
visit "$entry"
for m in $modules; do
  case " $order " in *" $m "*) ;; *) die "$m.js: $entry.js does not import it, directly or not (dead code?)" ;; esac
done
{
  echo "'use strict';"
  echo "{"
  for m in $order; do cat "$work/m_$m.js"; done
  echo "}"
} >"$work/bundle.js"


# ---- index.html ---------------------------------------------------------------------------
[ -f "$src/index.html" ] || die "index.html: no such file in $src"
: >"$work/style.css"
scripts=0
{
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
    '<link rel="stylesheet" href="/ui/'*'.css">')
      css=${line#*href=\"/ui/}
      css=${css%\">}
      [ -f "$src/$css" ] || die "index.html links /ui/$css, which is not a console asset"
      cat "$src/$css" >>"$work/style.css"
      ;;
    '<script type="module" src="/ui/'*'.js"></script>')
      scripts=$((scripts + 1))
      printf '%s\n' '@SCRIPT@'
      ;;
    *'<script'* | *'<style'* | *'<link rel="modulepreload"'* | *'<link rel="stylesheet"'*)
      die "index.html: a script or style the bundler does not take: $line"
      ;;
    *'</head>'*)
      printf '%s\n' '@STYLE@' "$line"
      ;;
    *) printf '%s\n' "$line" ;;
    esac
  done <"$src/index.html"
} >"$work/page.in"
[ "$scripts" = 1 ] || die "index.html: $scripts <script type=\"module\" src=\"/ui/...\"> lines; it needs exactly one"
if grep -in '</style\|<!--' "$work/style.css" >&2; then
  die "the stylesheets hold </style or <!-- (would break out of the inline style)"
fi
while IFS= read -r line; do
  case "$line" in
  @STYLE@)
    printf '<style>'
    cat "$work/style.css"
    printf '</style>\n'
    ;;
  @SCRIPT@)
    printf '<script>'
    cat "$work/bundle.js"
    printf '</script>\n'
    ;;
  *) printf '%s\n' "$line" ;;
  esac
done <"$work/page.in" >"$work/index.html"
csp="default-src 'none'; script-src 'sha256-$(sha256_b64 "$work/bundle.js")'; style-src 'sha256-$(sha256_b64 "$work/style.css")'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

# ---- the C file ---------------------------------------------------------------------------
path_of() { if [ "$1" = index.html ]; then echo "$work/index.html"; else echo "$src/$1"; fi; }
{
  echo "/* Generated by core/serve/console_embed.sh from core/serve/console/: do not edit. */"
  echo "#include \"serve/console.h\""
  echo
  echo "const char fr__console_csp[] = \"$csp\";"
  echo
  i=0
  for name in index.html $others; do
    echo "static const unsigned char a${i}[] = {"
    od -An -v -tu1 "$(path_of "$name")" | sed -e 's/^ *//' -e 's/  */,/g' -e 's/$/,/' -e '/^,$/d'
    echo "0};"
    i=$((i + 1))
  done
  echo
  echo "const fr_console_asset fr__console_assets[] = {"
  i=0
  for name in index.html $others; do
    type=$(type_of "$name")
    set -- $(cksum <"$(path_of "$name")")
    echo "    {\"$name\", \"$type\", \"\\\"$1-$2\\\"\", a$i, $2},"
    i=$((i + 1))
  done
  echo "};"
  echo "const size_t fr__console_n_assets = sizeof fr__console_assets / sizeof fr__console_assets[0];"
} >"$tmp"
mv "$tmp" "$out"
