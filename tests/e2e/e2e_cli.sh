#!/bin/sh
# End-to-end tests of the fluxroute CLI: exit codes, text and JSON output, errors.
. "${FR_SRCDIR:-.}/tests/lib.sh"
M="$FR_SRCDIR/manifests"

# ---- run ------------------------------------------------------------------------------
fr run "$M/hello.yaml"
expect_rc "hello" 0
expect_out "hello" "succeeded"
expect_out "hello" "outputs:"
expect_out "hello" "report:"

fr run "$M/hello.yaml" --json --seed 7
expect_rc "hello --json" 0
expect_jq "hello --json" '.status == "succeeded"'
expect_jq "hello --json" '[.steps[].step] == ["summarize", "classify", "report"]'
expect_jq "hello --json" '.steps[0].attempts | length == 1 and .[0].attempt == 1 and .[0].status == "succeeded"'
expect_jq "hello --json" '.steps[0].output.model == "mock-1" and .steps[0].output.provider == "local"'
expect_jq "hello --json" '.steps[0].output.usage.input_tokens > 0'
expect_jq "hello --json" '.steps[2].agent == "collect" and .steps[2].answered_by == "collect"'
expect_jq "hello --json" '.steps[2].output.steps.classify.text | type == "string"'
expect_jq "hello --json" '.steps[0].error == null and (.steps[0].duration_us | type == "number")'
expect_jq "hello --json" '.run_id | test("^[0-9a-f-]{36}$")'

fr run "$M/hello.yaml" --input '{"text": "custom words here"}' --json
expect_jq "--input inline" '.steps[0].output.text | contains("custom words here")'
echo '{"text": "from a file"}' > "$TMP/in.json"
fr run "$M/hello.yaml" --input "@$TMP/in.json" --json
expect_jq "--input @file" '.steps[0].output.text | contains("from a file")'
fr run "$M/hello.yaml" --input '{"text": '
expect_rc "--input invalid JSON" 2
expect_err "--input invalid JSON" "--input: malformed JSON at line 1, column 10: unexpected end"
printf '{"text": "a",\n "n": NaN}\n' >"$TMP/nan.json"
fr run "$M/hello.yaml" --input "@$TMP/nan.json"
expect_rc "--input NaN" 2
expect_err "--input NaN" "--input @$TMP/nan.json: malformed JSON at line 2, column 7: not allowed in JSON"
fr run "$M/hello.yaml" --input "@$TMP/nope.json"
expect_rc "--input missing file" 2
expect_err "--input missing file" "nope.json"

# Data flow through a diamond.
fr run "$DATA/dataflow.yaml" --json
expect_rc "dataflow" 0
expect_jq "dataflow" '.steps[0].output == {"value": 7, "tags": ["x", "y"]}'
expect_jq "dataflow" '.steps[1].output == {"input": {"n": 1}, "steps": {"a": {"value": 7, "tags": ["x", "y"]}}}'
expect_jq "dataflow" '.steps[3].output.steps | keys == ["b", "c"]'
expect_jq "dataflow" '.steps[3].output.steps.c.steps.a.value == 7'

# A failure skips descendants; an independent branch still finishes.
fr run "$M/examples/failure-isolation.yaml" --json
expect_rc "failure-isolation" 1
expect_jq "failure-isolation" '.status == "failed"'
expect_jq "failure-isolation" '.steps[0].step == "ingest" and .steps[0].status == "failed" and .steps[0].error.class == "unavailable"'
expect_jq "failure-isolation" '.steps[0].error.message | contains("attempt 1")'
expect_jq "failure-isolation" '[.steps[] | select(.status == "skipped") | .step] == ["enrich", "publish"]'
expect_jq "failure-isolation" '[.steps[] | select(.step == "publish")][0].error.message | contains("\"ingest\"")'
expect_jq "failure-isolation" '[.steps[] | select(.step == "audit")][0].status == "succeeded"'
fr run "$M/examples/failure-isolation.yaml"
expect_rc "failure-isolation text" 1
expect_out "failure-isolation text" "unavailable: chaos"

# The original's manifests still run (agents default to echo).
for ex in simple-pipeline parallel-agents; do
  fr run "$M/examples/$ex.yaml" --json
  expect_rc "example $ex" 0
  expect_jq "example $ex" '.status == "succeeded"'
done
fr run "$M/examples/parallel-agents.yaml" --json
expect_jq "parallel-agents order" '[.steps[].step] == ["enrich_agent", "score_agent", "summarize_agent"]'

# Template path that is not in the input: the step fails with class config.
fr run "$DATA/missing_path.yaml" --json
expect_rc "missing template path" 1
expect_jq "missing template path" '.steps[0].error.class == "config" and (.steps[0].error.message | contains("input.topic"))'

# Deadlines.
fr run "$DATA/timeout.yaml" --json
expect_rc "attempt timeout" 1
expect_jq "attempt timeout" '.steps[0].error.class == "timeout"'
expect_jq "attempt timeout" '.steps[0].duration_us < 5000000'
fr run "$DATA/deadline.yaml" --json
expect_rc "run deadline" 1
expect_jq "run deadline" '.steps[0].error.class == "deadline_exceeded"'
expect_jq "run deadline" '.steps[0].duration_us < 5000000'

# Determinism: the same seed gives the same report, timing fields aside.
strip='del(.run_id) | del(.. | .duration_us?)'
fr run "$M/bench/parallel100.yaml" --json --seed 3
jq -S "$strip" "$TMP/out" > "$TMP/a.json"
fr run "$M/bench/parallel100.yaml" --json --seed 3
jq -S "$strip" "$TMP/out" > "$TMP/b.json"
if cmp -s "$TMP/a.json" "$TMP/b.json"; then ok "parallel100 deterministic"; else not_ok "parallel100 deterministic"; fi

# ---- Ctrl-C -------------------------------------------------------------------------------
"$FLUXROUTE" run "$DATA/cancel.yaml" --json >"$TMP/out" 2>"$TMP/err" &
pid=$!
sleep 1
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_rc "Ctrl-C" 130
expect_jq "Ctrl-C" '.status == "cancelled" and .steps[0].error.class == "cancelled"'
expect_jq "Ctrl-C" '.steps[1].status == "skipped"'

# ---- validate -------------------------------------------------------------------------------
fr validate "$M/hello.yaml"
expect_rc "validate hello" 0
expect_out "validate hello" "manifest is valid"
fr validate "$M/examples/simple-pipeline.yaml"
expect_rc "validate original" 0
expect_err "validate original" 'note: agent "summarize_agent" has no `plugin:`; using echo'

fr validate "$DATA/bad.yaml"
expect_rc "validate bad" 2
expect_err "validate bad" "bad.yaml:2:14:"
expect_err "validate bad" "bad.yaml:3:21:"
expect_err "validate bad" "bad.yaml:7:5:"
expect_err "validate bad" "bad.yaml:8:9:"
expect_err "validate bad" "bad.yaml:14:12:"
expect_err "validate bad" "bad.yaml:15:17:"
lines=$(grep -c '^.*bad.yaml:[0-9]*:[0-9]*:' "$TMP/err")
if [ "$lines" -ge 6 ]; then ok "validate bad: every error reported ($lines)"; else not_ok "validate bad: every error reported" "got $lines"; fi
if grep -o 'bad.yaml:[0-9]*' "$TMP/err" | cut -d: -f2 | sort -n -c 2>/dev/null; then
  ok "validate bad: file order"; else not_ok "validate bad: file order"; fi
fr validate "$DATA/bad.yaml" --json
expect_rc "validate bad --json" 2
expect_jq "validate bad --json" '.valid == false and (.errors | length >= 6)'
expect_jq "validate bad --json" '.errors[0].line == 2 and .errors[0].col == 14'

fr validate "$DATA/cycle.yaml"
expect_rc "validate cycle" 2
expect_err "validate cycle" "x -> y -> z -> x"

fr validate "$DATA/unknown_plugin.yaml"
expect_rc "unknown plugin" 2
expect_err "unknown plugin" "unknown_plugin.yaml:3:13:"
expect_err "unknown plugin" "no_such_plugin"

fr validate "$DATA/bad_option.yaml"
expect_rc "bad option" 2
expect_err "bad option" "bad_option.yaml:5:7:"
expect_err "bad option" "fail_atempts"
expect_err "bad option" "bad_option.yaml:6:14:"

fr validate "$TMP/does-not-exist.yaml"
expect_rc "missing manifest" 2
expect_err "missing manifest" "does-not-exist.yaml"

# ---- RBAC -----------------------------------------------------------------------------------
REQUEST_ROLE=viewer fr run "$M/hello.yaml"
expect_rc "viewer cannot run" 3
expect_err "viewer cannot run" "permission denied"
REQUEST_ROLE=viewer fr validate "$M/hello.yaml"
expect_rc "viewer can validate" 0
REQUEST_ROLE=operator fr run "$DATA/admin_only.yaml"
expect_rc "operator vs run_roles [admin]" 3
REQUEST_ROLE=Admin fr run "$DATA/admin_only.yaml"
expect_rc "Admin (any case) may run" 0
REQUEST_ROLE=superuser fr run "$M/hello.yaml"
expect_rc "invalid REQUEST_ROLE" 2
expect_err "invalid REQUEST_ROLE" "REQUEST_ROLE"

# ---- graph, plugins, version, usage -------------------------------------------------------
fr graph "$DATA/dataflow.yaml"
expect_rc "graph dot" 0
expect_out "graph dot" "digraph pipeline"
expect_out "graph dot" '"a" -> "b";'
expect_out "graph dot" '"c" -> "d";'
fr graph "$DATA/dataflow.yaml" --format mermaid
expect_rc "graph mermaid" 0
expect_out "graph mermaid" "flowchart LR"
expect_out "graph mermaid" "s0 --> s1"
fr graph "$DATA/dataflow.yaml" --format png
expect_rc "graph bad format" 2

fr plugins list --json
expect_rc "plugins list" 0
expect_jq "plugins list" '[.plugins[] | select(.status == "ok") | .name] | contains(["chaos", "echo", "llm", "mock"])'
fr plugins info chaos --json
expect_rc "plugins info" 0
expect_jq "plugins info" '.kind == "agent" and .abi == "1.2"'
expect_jq "plugins info" '[.options[].name] | contains(["fail_attempts", "error", "delay", "output", "crash", "hang"])'
fr plugins info mock
expect_rc "plugins info text" 0
expect_out "plugins info text" "provider"
fr plugins info nope
expect_rc "plugins info unknown" 2
expect_err "plugins info unknown" "nope"

fr version
expect_rc "version" 0
expect_out "version" "fluxroute 0.1.0"
fr --version
expect_rc "--version" 0
for c in run validate bench graph plugins version; do
  fr "$c" --help
  expect_rc "$c --help" 0
  expect_out "$c --help" "usage: fluxroute $c"
done
fr frobnicate
expect_rc "unknown command" 2
fr run
expect_rc "run without manifest" 2
fr run "$M/hello.yaml" --bogus
expect_rc "unknown option" 2
expect_err "unknown option" "--bogus"

# Templates name only the step's dependencies: a typo gets the closest step id, a missing
# depends_on says so, both at the template's line and column.
printf 'providers: [{id: p, plugin: mock}]\nagents:\n  - {id: summarize, plugin: llm, provider: p, config: {prompt: "x"}}\n  - {id: rep, plugin: llm, provider: p, config: {prompt: "Of {{steps.sumarize.text}} and {{ steps.other.text }}"}}\n  - {id: other, plugin: echo}\npipeline: [{step: summarize}, {step: other}, {step: report, agent: rep, depends_on: [summarize]}]\n' > "$TMP/tpl.yaml"
fr validate "$TMP/tpl.yaml"
expect_rc "template names a missing step" 2
expect_err "template: a typo, with the closest id" "$TMP/tpl.yaml:4:58: step \"report\" (agent \"rep\"): the template names steps.sumarize, which is not a step (did you mean \"summarize\"?)"
expect_err "template: a step that is not a dependency" "the template names steps.other, which is not among its dependencies: add it to depends_on"
fr validate "$M/hello.yaml"
expect_rc "hello.yaml's templates name its dependencies" 0

# A skipped step's line says "skipped" once, then why.
printf 'agents: [{id: f, plugin: chaos, config: {fail_attempts: 1}}, {id: e, plugin: echo}]\npipeline: [{step: f}, {step: g, agent: e, depends_on: [f]}]\n' > "$TMP/skip.yaml"
fr run "$TMP/skip.yaml"
expect_rc "a step fails, its descendant is skipped" 1
expect_out "skipped step: the reason" 'skipped: ancestor "f" failed'
if grep -q "skipped: skipped" "$TMP/out"; then not_ok "skipped step: no doubled word"; else ok "skipped step: no doubled word"; fi

finish
