#!/bin/sh
# End-to-end tests of the plugin-author SDK: scaffold -> make -> run -> plugins test for
# both kinds (headers from the uninstalled source tree, then the plugin kit installed
# under a DESTDIR, through pkg-config and --sdk PREFIX), scaffold's refusals, the
# conformance kit on built-in, frozen and deliberately bad plugins, and the embedding
# example.
. "${FR_SRCDIR:-.}/tests/lib.sh"
umask 022
TP="$FR_BUILDDIR/tests/plugins/.libs"

# sh_run CMD...: like fr, for any command.
sh_run() {
  rc=0
  timeout 120 "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
}

# ---- scaffold -> build -> run -> plugins test -------------------------------------------
for kind in agent provider; do
  dir="$TMP/proj_$kind"
  name="my_${kind}1"
  fr scaffold "$dir" --name "$name" --kind "$kind" --sdk "$FR_SRCDIR"
  expect_rc "scaffold $kind" 0
  for f in "$name.c" Makefile manifest.yaml README.md; do
    if [ -f "$dir/$f" ]; then ok "scaffold $kind: $f"; else not_ok "scaffold $kind: $f"; fi
  done
  sh_run make -C "$dir" CFLAGS="-O2 -Werror"
  expect_rc "make -C ($kind, -Werror)" 0
  exported=$(nm -D --defined-only "$dir/$name.so" 2>/dev/null | awk '{print $NF}' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | tr '\n' ' ')
  if [ "$exported" = "fluxroute_plugin_v1 " ]; then ok "$kind exports only fluxroute_plugin_v1"
  else not_ok "$kind exports only fluxroute_plugin_v1" "exports: $exported"; fi
  fr run "$dir/manifest.yaml" --plugin-dir "$dir" --json
  expect_rc "run scaffolded $kind" 0
  expect_jq "run scaffolded $kind" '.status == "succeeded"'
  fr run "$dir/manifest.yaml"
  expect_rc "run scaffolded $kind (plugins.dirs, no --plugin-dir)" 0
  fr plugins test "$dir/$name.so"
  expect_rc "plugins test scaffolded $kind" 0
  expect_out "plugins test scaffolded $kind" "0 failed"
  fr plugins info "$dir/$name.so"
  expect_rc "plugins info scaffolded $kind" 0
done
fr run "$TMP/proj_agent/manifest.yaml" --plugin-dir "$TMP/proj_agent" --json
expect_jq "agent counts words" '.steps[1].output == {"label": "words of three bytes or more", "strings": 2, "words": 12}'
fr run "$TMP/proj_provider/manifest.yaml" --plugin-dir "$TMP/proj_provider" --json
expect_jq "provider echoes" '.steps[0].output.text == "echo: Say hello to FluxRoute"'
expect_jq "provider usage" '.steps[0].output.usage.output_tokens == 5 and .steps[0].output.model == "my_provider1-1"'
fr plugins test "$TMP/proj_provider/my_provider1.so" --json
expect_jq "plugins test --json" '.passed == true and (.checks | length) >= 10'
expect_jq "plugins test --json" '[.checks[].check] | index("allocation failure") != null'

# ---- scaffold against an installed kit -------------------------------------------------
# The kit's header, static library and pkg-config files installed under a DESTDIR, then a
# project scaffolded without --sdk (pkg-config fluxroute-kit, the sysroot pointing at the
# DESTDIR) and one with --sdk PREFIX: both link the installed libfluxroute-kit.a.
dest="$TMP/dest"
sh_run make -C "$FR_BUILDDIR" install-libLIBRARIES install-pkgincludeHEADERS \
  install-pkgconfigDATA DESTDIR="$dest"
expect_rc "make install (kit header, library, pkg-config) DESTDIR=" 0
kitpc=$(find "$dest" -name fluxroute-kit.pc | head -n 1)
kitlib=$(find "$dest" -name libfluxroute-kit.a | head -n 1)
kithdr=$(find "$dest" -path '*/fluxroute/kit.h' | head -n 1)
for f in "$kitpc" "$kitlib" "$kithdr"; do
  if [ -n "$f" ] && [ -f "$f" ]; then ok "installed ${f#"$dest"}"; else not_ok "installed kit file" "missing under $dest"; fi
done
prefix=$(dirname "$(dirname "$kitlib")")
kit_syms=$(nm -g --defined-only "$kitlib" 2>/dev/null | awk 'NF == 3 {print $3}' | grep -v '^frk_' | tr '\n' ' ')
if [ -z "$kit_syms" ]; then ok "the installed kit defines only frk_ symbols"
else not_ok "the installed kit defines only frk_ symbols" "others: $kit_syms"; fi
for how in pkg-config prefix; do
  dir="$TMP/proj_kit_$how"
  name="kit_$(echo "$how" | tr -d -)"
  if [ "$how" = pkg-config ]; then
    fr scaffold "$dir" --name "$name"
  else
    fr scaffold "$dir" --name "$name" --sdk "$prefix"
  fi
  expect_rc "scaffold against the installed kit ($how)" 0
  if grep -q "libfluxroute-kit\|fluxroute-kit" "$dir/Makefile"; then ok "Makefile links the kit ($how)"
  else not_ok "Makefile links the kit ($how)"; fi
  sh_run env PKG_CONFIG_PATH="$(dirname "$kitpc")" PKG_CONFIG_SYSROOT_DIR="$dest" \
    make -C "$dir" CFLAGS="-O2 -Werror"
  expect_rc "make against the installed kit ($how)" 0
  if grep -q -- "$dest" "$TMP/out"; then ok "the link used the installed kit ($how)"
  else not_ok "the link used the installed kit ($how)" "$(cat "$TMP/out")"; fi
  exported=$(nm -D --defined-only "$dir/$name.so" 2>/dev/null | awk '{print $NF}' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | tr '\n' ' ')
  if [ "$exported" = "fluxroute_plugin_v1 " ]; then ok "kit-linked plugin exports only fluxroute_plugin_v1 ($how)"
  else not_ok "kit-linked plugin exports only fluxroute_plugin_v1 ($how)" "exports: $exported"; fi
  fr run "$dir/manifest.yaml" --plugin-dir "$dir" --json
  expect_jq "kit-linked agent counts words ($how)" '.steps[1].output == {"label": "words of three bytes or more", "strings": 2, "words": 12}'
  fr plugins test "$dir/$name.so"
  expect_rc "plugins test kit-linked plugin ($how)" 0
done
mkdir -p "$TMP/nokit_prefix/include"
cp -r "$(dirname "$kithdr")" "$TMP/nokit_prefix/include/"
fr scaffold "$TMP/nokit" --name x --sdk "$TMP/nokit_prefix"
expect_rc "scaffold --sdk without a kit library" 2
expect_err "scaffold --sdk without a kit library" "no plugin kit"

# ---- scaffold refusals ------------------------------------------------------------------
for bad in Bad 9lives my-plugin "" "a b" "x/../y"; do
  fr scaffold "$TMP/bad" --name "$bad"
  expect_rc "scaffold --name '$bad'" 2
  expect_err "scaffold --name '$bad'" "invalid plugin name"
done
fr scaffold "$TMP/bad" --name ok_name --kind widget
expect_rc "scaffold --kind widget" 2
expect_err "scaffold --kind widget" "expected agent or provider"
fr scaffold "$TMP/bad"
expect_rc "scaffold without --name" 2
fr scaffold "$TMP/proj_agent" --name again
expect_rc "scaffold into a non-empty dir" 2
expect_err "scaffold into a non-empty dir" "not empty"
fr scaffold "$TMP/proj_agent" --name again --sdk "$FR_SRCDIR" --force
expect_rc "scaffold --force" 0
if [ -f "$TMP/proj_agent/again.c" ]; then ok "scaffold --force wrote again.c"; else not_ok "scaffold --force wrote again.c"; fi
fr scaffold "$TMP/sdkless" --name x --sdk "$TMP/nowhere"
expect_rc "scaffold --sdk without a source tree" 2
expect_err "scaffold --sdk without a source tree" "no FluxRoute source tree"
mkdir -p "$TMP/empty_dir"
fr scaffold "$TMP/empty_dir" --name fine --sdk "$FR_SRCDIR"
expect_rc "scaffold into an existing empty dir" 0

# ---- the conformance kit on other plugins -------------------------------------------------
for p in echo chaos mock; do
  fr plugins test "$FR_BUILDDIR/plugins/$p.so"
  expect_rc "plugins test built-in $p" 0
done
# llm needs a prompt unless passthrough (the gateway's): neither is a default, so its
# init() refuses the defaults, naming the option, and --config gives one.
fr plugins test "$FR_BUILDDIR/plugins/llm.so"
expect_rc "plugins test built-in llm without a prompt" 1
expect_out "plugins test built-in llm without a prompt" "option prompt is required"
fr plugins test "$FR_BUILDDIR/plugins/llm.so" --config '{passthrough: true}'
expect_rc "plugins test built-in llm, passthrough" 0
fr plugins test "$FR_BUILDDIR/tests/abi/.libs/frozen_v1_agent.so"
expect_rc "plugins test frozen v1 agent" 0
# ABI 1.1: option rows larger than fr_option (option_size) are listed and tested.
fr plugins test "$FR_BUILDDIR/tests/abi/.libs/wide_options.so"
expect_rc "plugins test ABI 1.1 agent with wider option rows" 0
fr plugins info "$FR_BUILDDIR/tests/abi/.libs/wide_options.so" --json
expect_jq "plugins info ABI 1.1 agent" '.abi == "1.1" and [.options[].name] == ["greeting", "times", "loud", "url"]'
# ABI 1.1's http_ex in the host, through an isolation helper's table, and under replay:
# the plugin's response is filled and the guard bytes after its struct stay untouched.
. "$FR_SRCDIR/tests/provider_lib.sh"
start_fake || exit 1
for iso in none process; do
  printf 'agents: [{id: w, plugin: wide_options, isolation: %s, config: {times: 1, url: "http://127.0.0.1:%s/_stats"}}]\npipeline: [{step: w}]\n' \
    "$iso" "$FAKE_PORT" >"$TMP/wide_$iso.yaml"
  fr run "$TMP/wide_$iso.yaml" --plugin-dir "$FR_BUILDDIR/tests/abi/.libs" --json --trace "$TMP/wide_$iso.json"
  expect_rc "http_ex (isolation: $iso)" 0
  expect_jq "http_ex (isolation: $iso)" '.steps[0].output | .status == 200 and .bytes > 0 and .guard == "intact"'
done
stop_fakes
fr replay "$TMP/wide_none.json" --plugin-dir "$FR_BUILDDIR/tests/abi/.libs"
expect_rc "http_ex: replay with the server gone" 0
expect_out "http_ex: replay with the server gone" "replay identical"

fr plugins test "$TP/bad_calls.so"
expect_rc "plugins test bad_calls" 1
expect_out "plugins test bad_calls" "time() (use host->clock_us)"
expect_out "plugins test bad_calls" "sleep() (use host->sleep_us)"
fr plugins test "$TP/bad_calls.so" --json
expect_jq "plugins test bad_calls --json" '.passed == false and ([.checks[] | select(.result == "fail") | .check] == ["direct calls"])'

fr plugins test "$TP/alloc_crash.so"
expect_rc "plugins test alloc_crash" 1
# Under ASan the sanitizer catches the SIGSEGV and exits 1 instead: still a failed check.
if [ "${FR_SANITIZERS:-no}" = yes ]; then
  expect_out "plugins test alloc_crash" "when host allocation #1 failed: the child exited"
else
  expect_out "plugins test alloc_crash" "when host allocation #1 failed: crashed"
fi
fr plugins test "$TP/alloc_crash.so" --json
expect_jq "plugins test alloc_crash --json" '[.checks[] | select(.result == "fail") | .check] == ["allocation failure"]'

fr plugins test "$TP/bad_abi.so"
expect_rc "plugins test refused plugin" 1
expect_out "plugins test refused plugin" "not supported"
fr plugins test "$TMP/missing.so"
expect_rc "plugins test missing file" 2
fr plugins test
expect_rc "plugins test without a file" 2
fr plugins test "$FR_BUILDDIR/plugins/llm.so" --config '{prompt: "{{input.text}}"}'
expect_rc "plugins test --config" 1
expect_out "plugins test --config" "nested call"
fr plugins test "$FR_BUILDDIR/plugins/llm.so" --config '{nope: 1}'
expect_rc "plugins test --config unknown option" 1
expect_out "plugins test --config unknown option" "unknown option \"nope\""

# ---- embedding example ------------------------------------------------------------------
sh_run "$FR_BUILDDIR/tests/embed_example" "$FR_SRCDIR/manifests/hello.yaml" '{"text": "embedded run"}' 7
expect_rc "embed example" 0
expect_jq "embed example" '.status == "succeeded" and .seed == 7'
expect_jq "embed example" '.steps[0].output.text | contains("embedded run")'
sh_run "$FR_BUILDDIR/tests/embed_example" "$FR_SRCDIR/manifests/examples/failure-isolation.yaml"
expect_rc "embed example, failing run" 1
sh_run "$FR_BUILDDIR/tests/embed_example" "$TMP/none.yaml"
expect_rc "embed example, missing manifest" 2


# ---- a scaffold finds the FluxRoute that generated it, whatever its --prefix ------------
# Without --sdk the Makefile's pkg-config looks first in this build's $(libdir)/pkgconfig
# (where `make install` puts fluxroute.pc and fluxroute-kit.pc), then in the caller's
# PKG_CONFIG_PATH.
pcdir="$(pkg-config --variable=libdir "$FR_BUILDDIR/sdk/fluxroute.pc")/pkgconfig"
fr scaffold "$TMP/prefixed" --name prefixed
expect_rc "scaffold without --sdk" 0
check "the Makefile's pkg-config looks in $pcdir first" \
  grep -qF "PKG_CONFIG = PKG_CONFIG_PATH=$pcdir\$\${PKG_CONFIG_PATH:+:\$\$PKG_CONFIG_PATH} pkg-config" "$TMP/prefixed/Makefile"
if [ ! -e "$pcdir/fluxroute.pc" ]; then
  mkdir -p "$TMP/pc"
  printf 'plugindir=%s\nName: fluxroute\nDescription: t\nVersion: 0\n' "$TMP/pd" >"$TMP/pc/fluxroute.pc"
  printf 'print:\n\t@echo "$(PLUGINDIR)"\n' >"$TMP/print.mk"
  PKG_CONFIG_PATH="$TMP/pc" make -s -C "$TMP/prefixed" -f Makefile -f "$TMP/print.mk" print >"$TMP/out" 2>&1
  check "then in the caller's PKG_CONFIG_PATH" grep -qx "$TMP/pd" "$TMP/out"
fi
finish
