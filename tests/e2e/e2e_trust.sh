#!/bin/sh
# Trust (issue 22): whose code runs and whose files are read.
#  - replay of someone else's trace ignores the plugins.dirs of its embedded manifest
#    unless --trust-trace-plugin-dirs (a test plugin's constructor leaves a marker file
#    behind when it is loaded);
#  - the loader refuses relative FLUXROUTE_PLUGIN_PATH entries and plugins in
#    directories others may write to, and `plugins list` shows why;
#  - serve's named manifests: only *.yaml/*.yml files inside the manifest directory,
#    another namespace's manifest is a 404 exactly like a missing one, and no byte or
#    diagnostic of a file reaches a caller it does not belong to.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
MARKER_SO="$FR_BUILDDIR/tests/plugins/.libs/trace_marker.so"
[ -f "$MARKER_SO" ] || { echo "missing $MARKER_SO (make check builds it)"; exit 1; }

# ---- replay trust ------------------------------------------------------------------------------
# A trace "received" from elsewhere, with a plugin directory beside it.
R="$TMP/received"
mkdir -p "$R/plugins" "$TMP/mine"
cp "$MARKER_SO" "$R/plugins/"
cp "$MARKER_SO" "$TMP/mine/"
cat > "$R/m.yaml" <<'YAML'
plugins: {dirs: [plugins]}
agents: [{id: a, plugin: trace_marker}]
pipeline: [{step: a}]
input: {x: 1}
YAML
export FR_TRACE_MARKER="$TMP/marker.record"
fr run "$R/m.yaml" --trace "$R/t.json"
expect_rc "record the trace" 0
check "recording loaded the trace's plugin" grep -q "received/plugins/trace_marker.so" "$FR_TRACE_MARKER"

# marker_loaded NAME FILE: the marker file exists (the trace's plugin ran).
no_marker() {
  if [ -e "$2" ]; then not_ok "$1: no plugin code ran" "marker: $(cat "$2")"; else ok "$1: no plugin code ran"; fi
}

export FR_TRACE_MARKER="$TMP/marker.1"
fr replay "$R/t.json"
expect_rc "replay ignores the trace's plugins.dirs" 2
no_marker "replay ignores the trace's plugins.dirs" "$FR_TRACE_MARKER"
expect_err "replay says what it ignored" "ignored the trace manifest's plugins.dirs ("
expect_err "replay says what it ignored" "received/plugins): plugins come from your own search path; pass --trust-trace-plugin-dirs"
expect_err "the plugin is looked up in the user's path" 'plugin "trace_marker" not found'

export FR_TRACE_MARKER="$TMP/marker.2"
fr replay "$R/t.json" --json
expect_rc "replay --json ignores them too" 2
no_marker "replay --json ignores them too" "$FR_TRACE_MARKER"
expect_err "replay --json says so" "ignored the trace manifest's plugins.dirs"

# The user's own copy along --plugin-dir is what runs; the report names the ignored dir.
export FR_TRACE_MARKER="$TMP/marker.3"
fr replay "$R/t.json" --plugin-dir "$TMP/mine" --json
expect_rc "replay with the user's own plugin dir" 0
expect_jq "report names the ignored dir" '.identical == true and (.ignored_plugin_dirs | length == 1) and (.ignored_plugin_dirs[0] | endswith("received/plugins"))'
expect_jq "report notes it" 'any(.notes[]; test("^ignored the trace manifest.s plugins.dirs"))'
check "only the user's copy ran" sh -c "grep -q '/mine/trace_marker.so' '$FR_TRACE_MARKER' && ! grep -q received '$FR_TRACE_MARKER'"

export FR_TRACE_MARKER="$TMP/marker.4"
fr replay "$R/t.json" --plugin-dir "$TMP/mine"
expect_rc "text report" 0
expect_out "text report" "replay identical"
expect_err "text report notes the ignored dir" "note: ignored the trace manifest's plugins.dirs"

export FR_TRACE_MARKER="$TMP/marker.5"
fr replay "$R/t.json" --trust-trace-plugin-dirs --json
expect_rc "--trust-trace-plugin-dirs" 0
expect_jq "--trust-trace-plugin-dirs ignores nothing" '.identical == true and .ignored_plugin_dirs == []'
check "--trust-trace-plugin-dirs loads the trace's plugin" grep -q "received/plugins/trace_marker.so" "$FR_TRACE_MARKER"

# A manifest the user names with --manifest is the user's own: its dirs are searched.
export FR_TRACE_MARKER="$TMP/marker.6"
fr replay "$R/t.json" --manifest "$R/m.yaml" --json
expect_rc "--manifest is the user's own" 0
expect_jq "--manifest is the user's own" '.ignored_plugin_dirs == []'

# serve refuses plugin dirs in an uploaded trace (unchanged), and loads nothing.
mkdir -p "$TMP/sm"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(printf %s acme-key | sha256sum | cut -d' ' -f1), tenant: acme, namespace: acme, role: operator}
  - {id: beta-op, sha256: $(printf %s beta-key | sha256sum | cut -d' ' -f1), tenant: beta, namespace: beta, role: operator}
YAML
ACME="Authorization: Bearer acme-key"
BETA="Authorization: Bearer beta-key"
unset FR_TRACE_MARKER

# The manifest directory: two tenants' manifests, an invalid one of beta's whose
# diagnostics would name a secret, one whose namespace cannot be read, a file that is no
# manifest, a link leading out of the directory and one staying inside.
M="$TMP/sm"
printf 'router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$M/acme.yaml"
printf 'router: {namespace: beta}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$M/beta.yml"
printf 'router: {namespace: beta}\nbeta_secret_hunter2: 1\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$M/beta_bad.yaml"
printf 'router: {namespace: acme\nTOPSECRET_in_broken_yaml: [\n' > "$M/broken.yaml"
printf 'router: {namespace: "no way!"}\nNS_SECRET_x: 1\n' > "$M/badns.yaml"
printf 'API_KEY=sk-live-CREDS-SECRET\n' > "$M/creds.env"
printf 'API_KEY=sk-live-YAML-SECRET\n' > "$M/creds.yaml.bak"
mkdir -p "$TMP/outside"
printf 'router: {namespace: acme}\nOUTSIDE_SECRET: 1\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$TMP/outside/evil.yaml"
ln -s "$TMP/outside/evil.yaml" "$M/out.yaml"
ln -s ../outside/evil.yaml "$M/out_rel.yaml"
ln -s acme.yaml "$M/inside.yaml"
export FR_TRACE_MARKER="$TMP/marker.serve"
start_serve --manifest-dir "$M" --keys "$TMP/keys.yaml" || exit 1
unset FR_TRACE_MARKER

req POST /v1/replay "{\"trace\": $(cat "$R/t.json")}" -H "$ACME"
expect_code "serve: uploaded trace with plugins.dirs" 400
expect_jq "serve: uploaded trace with plugins.dirs" '.error.code == "plugin_dirs_refused"'
no_marker "serve: uploaded trace" "$TMP/marker.serve"

# no_secret NAME: the last reply quotes nothing of the files.
no_secret() {
  if grep -q -e SECRET -e hunter2 -e "sk-live" -e "no way" "$TMP/out"; then
    not_ok "$1: no file content in the reply" "$(head -c 300 "$TMP/out")"
  else
    ok "$1: no file content in the reply"
  fi
}
# as_missing NAME MANIFEST: the last reply is byte for byte the reply for a missing file
# (the name aside).
as_missing() {
  sed "s/$2/NAME/g" "$TMP/out" > "$TMP/got.json"
  cp "$TMP/out" "$TMP/keep.json"
  req POST "$3" '{"manifest": "zz-missing.yaml"}' -H "$ACME"
  sed "s/zz-missing.yaml/NAME/g" "$TMP/out" > "$TMP/missing.json"
  if cmp -s "$TMP/got.json" "$TMP/missing.json"; then ok "$1: same reply as a missing file"
  else not_ok "$1: same reply as a missing file" "got: $(cat "$TMP/keep.json")" "missing: $(cat "$TMP/out")"; fi
}

for route in /v1/run /v1/validate; do
  req POST $route '{"manifest": "creds.env"}' -H "$ACME"
  expect_code "$route creds.env: not a manifest name" 400
  expect_jq "$route creds.env" '.error.code == "bad_manifest_name"'
  no_secret "$route creds.env"
  req POST $route '{"manifest": "creds.yaml.bak"}' -H "$ACME"
  expect_code "$route creds.yaml.bak" 400
  no_secret "$route creds.yaml.bak"
  for name in out.yaml out_rel.yaml; do
    req POST $route "{\"manifest\": \"$name\"}" -H "$ACME"
    expect_code "$route $name: a link out of the directory is not found" 404
    no_secret "$route $name"
    as_missing "$route $name" "$name" $route
  done
  req POST $route '{"manifest": "beta.yml"}' -H "$ACME"
  expect_code "$route another tenant's manifest" 404
  expect_jq "$route another tenant's manifest" '.error.code == "manifest_not_found"'
  as_missing "$route another tenant's manifest" beta.yml $route
  req POST $route '{"manifest": "beta_bad.yaml"}' -H "$ACME"
  expect_code "$route another tenant's invalid manifest" 404
  no_secret "$route another tenant's invalid manifest"
  as_missing "$route another tenant's invalid manifest" beta_bad.yaml $route
  for key in "$ACME" "$BETA"; do
    for name in broken.yaml badns.yaml; do
      req POST $route "{\"manifest\": \"$name\"}" -H "$key"
      expect_code "$route $name (namespace unreadable) as ${key#*Bearer }" 404
      no_secret "$route $name as ${key#*Bearer }"
    done
  done
done
check "serve logs the manifests of no readable namespace" sh -c \
  "grep -q 'manifest \"broken.yaml\": its router.namespace cannot be read' '$TMP/serve.err' && grep -q 'manifest \"badns.yaml\"' '$TMP/serve.err'"
check "each is logged once per file version" sh -c "[ \$(grep -c 'broken.yaml' '$TMP/serve.err') = 1 ]"

# The owners still get their runs and their diagnostics.
req POST /v1/run '{"manifest": "beta.yml"}' -H "$BETA"
expect_code "beta runs its own .yml manifest" 200
req POST /v1/validate '{"manifest": "beta_bad.yaml"}' -H "$BETA"
expect_code "beta validates its invalid manifest" 200
expect_jq "beta sees its diagnostics" '.valid == false and any(.errors[]; .message | test("beta_secret_hunter2"))'
req POST /v1/run '{"manifest": "inside.yaml"}' -H "$ACME"
expect_code "a link inside the directory" 200
# Now beta.yml has an idle pipeline of beta's: the cached path must say 404 all the same.
for _ in 1 2; do
  req POST /v1/run '{"manifest": "beta.yml"}' -H "$ACME"
  expect_code "cached: another tenant's manifest" 404
  as_missing "cached: another tenant's manifest" beta.yml /v1/run
done
# Inline manifests are the caller's own text: their namespace check stays a 403.
req POST /v1/run '{"manifest_yaml": "router: {namespace: beta}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n"}' -H "$ACME"
expect_code "inline manifest of another namespace" 403
expect_jq "inline manifest of another namespace" '.error.code == "namespace_forbidden"'

# Concurrent callers of both tenants on the same files.
pids=""
for i in 1 2 3 4 5 6; do
  curl -s -o "$TMP/c_acme$i" -w '%{http_code}' --max-time 20 -H "$ACME" -d '{"manifest": "beta.yml"}' "$SERVE_URL/v1/run" > "$TMP/c_acme$i.code" &
  pids="$pids $!"
  curl -s -o "$TMP/c_beta$i" -w '%{http_code}' --max-time 20 -H "$BETA" -d '{"manifest": "beta.yml"}' "$SERVE_URL/v1/run" > "$TMP/c_beta$i.code" &
  pids="$pids $!"
done
wait $pids
check "concurrent: acme always 404, beta always 200" sh -c \
  "[ \"\$(cat '$TMP'/c_acme*.code)\" = 404404404404404404 ] && [ \"\$(cat '$TMP'/c_beta*.code)\" = 200200200200200200 ]"

# A file that moves to another namespace is the new owner's once the server looks again
# (within a second): the old owner then gets 404, never the file's diagnostics.
printf 'router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$M/moving.yaml"
req POST /v1/run '{"manifest": "moving.yaml"}' -H "$ACME"
expect_code "moving.yaml while acme's" 200
printf 'router: {namespace: beta}\nMOVED_SECRET: 1\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$M/moving.yaml"
deadline=$(($(date +%s) + 10))
while :; do
  req POST /v1/run '{"manifest": "moving.yaml"}' -H "$ACME"
  [ "$code" = 200 ] && [ "$(date +%s)" -lt "$deadline" ] || break
  sleep 0.1
done
expect_code "moving.yaml after it moved to beta" 404
no_secret "moving.yaml after it moved to beta"
req POST /v1/validate '{"manifest": "moving.yaml"}' -H "$BETA"
expect_jq "moving.yaml: its new owner sees the diagnostics" '.valid == false and any(.errors[]; .message | test("MOVED_SECRET"))'
stop_serve

# ---- loader trust through the CLI ------------------------------------------------------------
printf 'agents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n' > "$TMP/echo.yaml"
cd "$TMP" || exit 1
export FLUXROUTE_PLUGIN_PATH=mine
fr run "$TMP/echo.yaml"
expect_rc "relative FLUXROUTE_PLUGIN_PATH entry" 2
expect_err "relative FLUXROUTE_PLUGIN_PATH entry" 'plugin "echo": refused: FLUXROUTE_PLUGIN_PATH entry "mine" is a relative path; only absolute directories are searched'
fr plugins list --json
expect_jq "plugins list shows the refused entry" 'any(.plugins[]; .path == "mine" and .status == "refused" and (.refusal | test("relative path")))'
export FLUXROUTE_PLUGIN_PATH="$TMP/mine"
fr plugins list --json
expect_jq "an absolute entry is searched" 'any(.plugins[]; .name == "trace_marker" and .status == "ok")'
unset FLUXROUTE_PLUGIN_PATH
# --plugin-dir is the user's own word: relative to the working directory.
fr plugins list --plugin-dir mine --json
expect_jq "relative --plugin-dir resolves against the working directory" 'any(.plugins[]; .name == "trace_marker" and .status == "ok")'
cd - >/dev/null || exit 1

mkdir -p "$TMP/gw"
cp "$MARKER_SO" "$TMP/gw/"
chmod 0775 "$TMP/gw"
export FR_TRACE_MARKER="$TMP/marker.gw"
fr plugins list --plugin-dir "$TMP/gw"
expect_out "plugins list: group-writable dir" "refused: directory $(realpath "$TMP/gw") is writable by group (mode 0775)"
no_marker "plugins list: group-writable dir" "$FR_TRACE_MARKER"
chmod 0755 "$TMP/gw"
mkdir -p "$TMP/open/sub"
cp "$MARKER_SO" "$TMP/open/sub/"
chmod 0777 "$TMP/open"
fr plugins info trace_marker --plugin-dir "$TMP/open/sub"
expect_rc "world-writable parent" 2
expect_err "world-writable parent" "refused: directory $(realpath "$TMP/open") is writable by group and others (mode 0777)"
no_marker "world-writable parent" "$FR_TRACE_MARKER"
chmod 0755 "$TMP/open"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$TMP/theirs"
  cp "$MARKER_SO" "$TMP/theirs/"
  chown nobody "$TMP/theirs/trace_marker.so"
  fr plugins info trace_marker --plugin-dir "$TMP/theirs"
  expect_rc "plugin owned by another user" 2
  expect_err "plugin owned by another user" "trace_marker.so: refused: file is owned by uid $(id -u nobody)"
  no_marker "plugin owned by another user" "$FR_TRACE_MARKER"
else
  echo "# skipped: a plugin owned by another user needs root to create (running as uid $(id -u))"
fi
unset FR_TRACE_MARKER
finish
