#!/bin/sh
# `make fuzz`: each target in FUZZ_TARGETS under clang's libFuzzer with ASan and UBSan for
# FUZZ_SECONDS, starting from tests/fuzz/<target>_corpus; new inputs are merged into that
# corpus (check them in) and a crash is left beside it as crash-*.  Targets:
#   trace     the trace parser (fuzz_trace.c)
#   journal   the journal reader (fuzz_journal.c)
#   manifest  the manifest and providers-file parsers (fuzz_manifest.c)
#   provider  the openai, anthropic and gemini plugins' answer side (fuzz_provider.c),
#             with the plugins rebuilt instrumented under tests/fuzz/plugins
#   serve     serve's request handlers: JSON bodies, manifest_yaml, traces to replay, run
#             ids (fuzz_serve.c), with echo, llm and mock rebuilt instrumented likewise
# FUZZ_RUNS (when set) ends each target after that many inputs instead of FUZZ_SECONDS.
# The Makefile passes the compiler and flags in the environment (FUZZ_CC, FUZZ_CPPFLAGS,
# FUZZ_DEP_CF, FUZZ_DEP_LIBS, FUZZ_JSONC_CF, FUZZ_JSONC_LIBS) and the sources' directory.
set -eu
SRCDIR=$1
SAN="-g -O1 -std=c11 -fsanitize=address,undefined"
CORE_SOURCES=""
for f in "$SRCDIR"/core/*/*.c; do
  [ "${f##*/}" = main.c ] || CORE_SOURCES="$CORE_SOURCES $f"
done
# Runs a fuzzer, with FR_BUILDDIR pointing at the instrumented plugins when it loads them.
fuzzer() {
  if [ -n "$plugins_under" ]; then FR_BUILDDIR=$plugins_under "$@"; else "$@"; fi
}
# Builds the named plugins with ASan, UBSan and coverage under tests/fuzz/plugins, where
# the fuzzer then loads them from.
# The plugins' helper sources (plugins/libfrplugin.la and the kit in the normal build).
PLUGIN_HELPERS="$SRCDIR/plugins/plugin_util.c $SRCDIR/plugins/template.c $SRCDIR/plugins/provider_util.c \
  $SRCDIR/sdk/kit/buf.c $SRCDIR/sdk/kit/json.c $SRCDIR/sdk/kit/jsonc.c $SRCDIR/sdk/kit/status.c \
  $SRCDIR/sdk/kit/wire.c"
instrumented_plugins() {
  mkdir -p tests/fuzz/plugins
  for p in "$@"; do
    # shellcheck disable=SC2086
    $FUZZ_CC $SAN -fsanitize=fuzzer-no-link -shared -fPIC -fvisibility=hidden $FUZZ_CPPFLAGS -I"$SRCDIR/sdk" \
      $FUZZ_JSONC_CF "$SRCDIR/plugins/$p.c" $PLUGIN_HELPERS -o "tests/fuzz/plugins/$p.so" \
      $FUZZ_JSONC_LIBS
  done
  plugins_under=$(pwd)/tests/fuzz
}
mkdir -p tests/fuzz
for t in $FUZZ_TARGETS; do
  echo "fuzz_$t: ${FUZZ_RUNS:-$FUZZ_SECONDS s} ${FUZZ_RUNS:+inputs}"
  bin=tests/fuzz/fuzz_$t
  plugins_under=""
  case $t in
    trace | journal | manifest)
      # shellcheck disable=SC2086
      $FUZZ_CC $SAN -fsanitize=fuzzer $FUZZ_CPPFLAGS -I. $FUZZ_DEP_CF $CORE_SOURCES \
        "$SRCDIR/tests/fuzz/fuzz_$t.c" -o "$bin" $FUZZ_DEP_LIBS ;;
    provider)
      instrumented_plugins openai anthropic gemini
      # shellcheck disable=SC2086
      $FUZZ_CC $SAN -fsanitize=fuzzer $FUZZ_CPPFLAGS -I"$SRCDIR/plugins" -I"$SRCDIR/sdk" $FUZZ_JSONC_CF \
        "$SRCDIR/tests/fuzz/fuzz_provider.c" $PLUGIN_HELPERS -o "$bin" $FUZZ_JSONC_LIBS -ldl ;;
    serve)
      instrumented_plugins echo llm mock
      # shellcheck disable=SC2086
      $FUZZ_CC $SAN -fsanitize=fuzzer $FUZZ_CPPFLAGS -I. $FUZZ_DEP_CF $CORE_SOURCES \
        "$SRCDIR/tests/fuzz/fuzz_serve.c" -o "$bin" $FUZZ_DEP_LIBS ;;
    *) echo "fuzz: unknown target $t (trace, journal, manifest, provider, serve)" >&2; exit 2 ;;
  esac
  corpus=$SRCDIR/tests/fuzz/${t}_corpus
  rm -rf tests/fuzz/new
  mkdir -p tests/fuzz/new "$corpus"
  if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=$FUZZ_SECONDS"; fi
  fuzzer "$bin" "$limit" -max_len=65536 \
    -artifact_prefix="$corpus/crash-" tests/fuzz/new "$corpus"
  fuzzer "$bin" -merge=1 "$corpus" tests/fuzz/new
  rm -rf tests/fuzz/new
done
