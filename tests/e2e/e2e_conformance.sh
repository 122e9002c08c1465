#!/bin/sh
# End-to-end tests of `plugins test` with sample inputs and library checks: a plugin that
# rightly refuses the built-in input is "needs input", not a failure; --sample gives the
# input (read strictly, errors name the file, line and column); the libraries a plugin
# links are scanned transitively and their forbidden imports are warnings naming the
# library.
. "${FR_SRCDIR:-.}/tests/lib.sh"
TP="$FR_BUILDDIR/tests/plugins/.libs"

# ---- needs input ---------------------------------------------------------------------
fr plugins test "$TP/needs_topic.so"
expect_rc "needs_topic without --sample passes" 0
expect_out "needs_topic without --sample" "needs input"
expect_out "needs_topic without --sample" "input.topic is required"
expect_out "needs_topic without --sample" "give a sample with --sample FILE"
fr plugins test "$TP/needs_topic.so" --json
expect_jq "needs_topic --json" '.passed == true and .needs_input == true'
expect_jq "needs_topic --json: sample call needs input" '[.checks[] | select(.check == "sample call") | .result] == ["needs input"]'
expect_jq "needs_topic --json: later checks not run" '[.checks[] | select(.check == "determinism") | .result] == ["needs input"]'
expect_jq "needs_topic --json: nothing failed" '[.checks[] | select(.result == "fail")] == []'

# ---- --sample ------------------------------------------------------------------------
printf '{"input": {"topic": "owls"}}\n' >"$TMP/sample.json"
fr plugins test "$TP/needs_topic.so" --sample "$TMP/sample.json" --json
expect_rc "needs_topic --sample" 0
expect_jq "needs_topic --sample: every runtime check ran" '.passed == true and ([.checks[] | select(.result == "needs input") | .check] == ["nested call"])'
expect_jq "needs_topic --sample: sample call passed" '[.checks[] | select(.check == "sample call") | .result] == ["pass"]'
expect_jq "needs_topic --sample: determinism passed" '[.checks[] | select(.check == "determinism") | .result] == ["pass"]'
expect_jq "needs_topic --sample: the built-in nested input still needs input" '[.checks[] | select(.check == "nested call") | .result] == ["needs input"]'

# The author's own sample refused is a real failure.
printf '{"input": {"subject": "owls"}, "steps": {}}\n' >"$TMP/wrong.json"
fr plugins test "$TP/needs_topic.so" --sample "$TMP/wrong.json" --json
expect_rc "a refused --sample fails" 1
expect_jq "a refused --sample fails" '[.checks[] | select(.check == "sample call") | [.result, .message]] == [["fail", "returned INVALID: input.topic is required (a string)"]]'

# Bad sample files: usage errors that name the file and the place.
printf '{"input": {"topic": NaN}}\n' >"$TMP/nan.json"
fr plugins test "$TP/needs_topic.so" --sample "$TMP/nan.json"
expect_rc "--sample NaN" 2
expect_err "--sample NaN" "--sample $TMP/nan.json: malformed JSON at line 1, column"
printf '[1, 2]' >"$TMP/array.json"
fr plugins test "$TP/needs_topic.so" --sample "$TMP/array.json"
expect_rc "--sample array" 2
expect_err "--sample array" "expected a JSON object"
printf '{"input": {}, "topic": "owls"}' >"$TMP/extra.json"
fr plugins test "$TP/needs_topic.so" --sample "$TMP/extra.json"
expect_rc "--sample unknown field" 2
expect_err "--sample unknown field" 'unknown field "topic"'
fr plugins test "$TP/needs_topic.so" --sample "$TMP/missing.json"
expect_rc "--sample missing file" 2
expect_err "--sample missing file" "missing.json: No such file or directory"

# ---- the libraries a plugin links ------------------------------------------------------
# llm links json-c, whose library imports time() and getrandom(): warnings naming it.
fr plugins test "$FR_BUILDDIR/plugins/llm.so" --json --config '{prompt: "say hi"}'
expect_rc "llm: library warnings are not failures" 0
expect_jq "llm: library calls warn" '[.checks[] | select(.check == "library calls") | .result] == ["warn"]'
expect_jq "llm: the warning names json-c and its imports" '[.checks[] | select(.check == "library calls") | .message] | .[0] | test("libjson-c[.]so[.][0-9]+: .*getrandom[(][)]")'
expect_jq "llm: the plugin's own direct calls pass" '[.checks[] | select(.check == "direct calls") | .result] == ["pass"]'
fr plugins test "$FR_BUILDDIR/plugins/llm.so" --config '{prompt: "say hi"}'
expect_out "llm: the summary counts the warning" "0 failed, 1 warning"
# echo links nothing beyond the C runtime.
fr plugins test "$FR_BUILDDIR/plugins/echo.so" --json
expect_jq "echo: no libraries" '[.checks[] | select(.check == "library calls") | .message] == ["links no libraries beyond the C runtime"]'

# ---- a provider answering "usage": null (the vendor reported none) conforms ---------------
fr plugins test "$FR_BUILDDIR/plugins/mock.so" --config '{usage: false}' --json
expect_rc "mock usage: false: conforms" 0
expect_jq "mock usage: false: the sample call passes" '[.checks[] | select(.check == "sample call") | .result] == ["pass"]'

# ---- plugins list labels a plugin by the directory it was found in ----------------------
# FluxRoute's plugin directory also holds what users `make install`: never "(built-in)".
fr plugins list
expect_out "plugins list: the plugin directory's label" "/echo.so (plugindir)"
check "plugins list: no (built-in) label" sh -c '! grep -q "(built-in)" "$1"' sh "$TMP/out"

finish
