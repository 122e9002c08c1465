#!/bin/sh
# End-to-end tests of durable runs (issue 30): `fluxroute run --journal` appends the run as
# it goes, a process killed by SIGSEGV mid-run is finished by `fluxroute resume` without
# paying again for a completed provider call (tests/fake_vendor counts requests), a step
# in flight resumes inside its attempt, broken and foreign journals are refused (or, a
# half-written last entry, resumed from the entry before), FLUXROUTE_JOURNAL_DIR, the
# sync settings, idempotency keys, and the resumed trace replaying exactly.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"

P="$FR_BUILDDIR/tests/plugins/.libs"
export FAKE_JOURNAL_KEY=sk-journal-test
start_fake --openai-key "$FAKE_JOURNAL_KEY" || exit 1
PORT=$FAKE_PORT
requests() { fake_stats "$PORT" | jq .requests; }

# make_manifest NAME MARK: tests/data/journal/NAME.yaml for this server and crash marker.
make_manifest() {
  sed -e "s|@PORT@|$PORT|" -e "s|@MARK@|$2|" "$FR_SRCDIR/tests/data/journal/$1.yaml" \
    >"$TMP/$1.yaml"
}
# The report with what a resume changes set aside: run id, executions, resume marks, timing.
STRIP='del(.run_id, .executions, .resumed_from) | walk(if type == "object" then del(.duration_us, .started_us, .from_journal) else . end)'

# ---- an uninterrupted run: the reference ------------------------------------------------
make_manifest chain "$TMP/crashed"
: >"$TMP/crashed" # already crashed once: this run goes through
fake_reset "$PORT"
fr run "$TMP/chain.yaml" --seed 7 --json --trace "$TMP/ref.json"
expect_rc "uninterrupted run" 0
cp "$TMP/out" "$TMP/ref.report"
[ "$(requests)" = 5 ] && ok "uninterrupted run: 5 vendor requests" ||
  not_ok "uninterrupted run: 5 vendor requests" "got $(requests)"

# ---- killed after the third step, resumed ------------------------------------------------
rm -f "$TMP/crashed"
fake_reset "$PORT"
fr run "$TMP/chain.yaml" --seed 7 --json --journal "$TMP/j1"
[ "$rc" -gt 128 ] && ok "journaled run dies of SIGSEGV (exit $rc)" ||
  not_ok "journaled run dies of SIGSEGV" "exit $rc"
[ -e "$TMP/crashed" ] && ok "chaos crash_once created its marker" ||
  not_ok "chaos crash_once created its marker"
[ "$(requests)" = 3 ] && ok "killed run: 3 vendor requests before it died" ||
  not_ok "killed run: 3 vendor requests before it died" "got $(requests)"
cp "$TMP/j1" "$TMP/j1.killed"
RUN_ID=$(head -1 "$TMP/j1" | cut -c18- | jq -r .run_id)

fr resume "$TMP/j1" --json --trace "$TMP/resumed.json"
expect_rc "resume" 0
cp "$TMP/out" "$TMP/resumed.report"
[ "$(requests)" = 5 ] && ok "resume: each completed call made exactly once (5 requests in all)" ||
  not_ok "resume: each completed call made exactly once (5 requests in all)" "got $(requests)"
expect_jq "resume: same run id" ".run_id == \"$RUN_ID\""
expect_jq "resume: same seed" '.seed == 7'
expect_jq "resume: executions" '.executions == 2'
expect_jq "resume: went live at the step in flight" '.resumed_from == {"step": "crash", "attempt": 1, "effect": 0}'
expect_jq "resume: the first three steps came from the journal" \
  '[.steps[] | .from_journal] == [true, true, true, false, false, false]'
jq -S "$STRIP" "$TMP/ref.report" >"$TMP/a.json"
jq -S "$STRIP" "$TMP/resumed.report" >"$TMP/b.json"
if diff "$TMP/a.json" "$TMP/b.json" >"$TMP/diff" 2>&1; then
  ok "resume: the report equals the uninterrupted run's (timing and resume fields aside)"
else
  not_ok "resume: the report equals the uninterrupted run's" "$(head -20 "$TMP/diff")"
fi
fr replay "$TMP/resumed.json"
expect_rc "the resumed run's trace replays" 0
expect_out "the resumed run's trace replays" "replay identical: 6 steps"
tail -1 "$TMP/j1" | cut -c18- | jq -e '.t == "end" and .status == "succeeded"' >/dev/null &&
  ok "the journal ends with the run's end" || not_ok "the journal ends with the run's end"

# A finished journal resumes without running anything: the trace derives from it.
fr resume "$TMP/j1" --json --trace "$TMP/again.json"
expect_rc "resume of a finished run" 0
[ "$(requests)" = 5 ] && ok "resume of a finished run: no request" ||
  not_ok "resume of a finished run: no request" "got $(requests)"
expect_jq "resume of a finished run: every step from the journal" \
  '([.steps[] | .from_journal] | all) and .resumed_from == null and .executions == 3'
# debug sets the resume marks aside.
fr debug "$TMP/resumed.json" "$TMP/again.json"
expect_rc "debug ignores resumed_from, from_journal and executions" 0

# ---- a step in flight resumes inside its attempt ---------------------------------------------
make_manifest three "$TMP/crashed3"
fake_reset "$PORT"
fr run "$TMP/three.yaml" --plugin-dir "$P" --json --journal "$TMP/j3"
[ "$rc" -gt 128 ] && ok "killed after its second call (exit $rc)" ||
  not_ok "killed after its second call" "exit $rc"
[ "$(requests)" = 2 ] && ok "mid-attempt: 2 requests before the crash" ||
  not_ok "mid-attempt: 2 requests before the crash" "got $(requests)"
fr resume "$TMP/j3" --plugin-dir "$P" --json --trace "$TMP/three.json"
expect_rc "mid-attempt resume" 0
[ "$(requests)" = 3 ] && ok "mid-attempt resume makes only the third call" ||
  not_ok "mid-attempt resume makes only the third call" "got $(requests)"
expect_jq "mid-attempt resume: one attempt, live from its third call" \
  '(.steps[0].attempts | length) == 1 and .resumed_from.step == "calls" and .resumed_from.attempt == 1 and .steps[0].from_journal == false'
jq -r '.steps[0].attempts[0].effects[] | select(.kind == "provider") | .request.messages[0].content' \
  "$TMP/three.json" >"$TMP/prompts"
[ "$(wc -l <"$TMP/prompts")" = 3 ] && ok "mid-attempt: the trace has the three calls" ||
  not_ok "mid-attempt: the trace has the three calls" "$(cat "$TMP/prompts")"
# host->idempotency_key: sha256(run id, step, attempt, ordinal), the same in every execution.
RID=$(jq -r .run_id "$TMP/three.json")
for n in 1 2 3; do
  want=$(printf '%s\ncalls\n1\n%s' "$RID" "$n" | sha256sum | cut -c1-32)
  grep -qx "attempt 1 call $n key $want" "$TMP/prompts" &&
    ok "idempotency key of call $n derives from run, step, attempt and ordinal" ||
    not_ok "idempotency key of call $n" "want $want" "$(cat "$TMP/prompts")"
done
fr replay "$TMP/three.json" --plugin-dir "$P"
expect_rc "the mid-attempt resumed trace replays" 0
# An `isolation: process` agent gets the key an in-process one would (its helper asks the
# host, which derives it from the call it proxies).
sed -e 's|plugin: twocalls|plugin: twocalls\n    isolation: process|' \
  -e 's|, crash_once: "[^"]*", crash_after: 2||' "$TMP/three.yaml" >"$TMP/three_iso.yaml"
fake_reset "$PORT"
fr run "$TMP/three_iso.yaml" --plugin-dir "$P" --json --trace "$TMP/iso.json"
expect_rc "isolated agent with idempotency keys" 0
RID=$(jq -r .run_id "$TMP/iso.json")
jq -r '.steps[0].attempts[0].effects[] | select(.kind == "provider") | .request.messages[0].content' \
  "$TMP/iso.json" >"$TMP/iso_prompts"
for n in 1 2 3; do
  want=$(printf '%s\ncalls\n1\n%s' "$RID" "$n" | sha256sum | cut -c1-32)
  grep -qx "attempt 1 call $n key $want" "$TMP/iso_prompts" &&
    ok "isolation: process: idempotency key of call $n as in-process" ||
    not_ok "isolation: process: idempotency key of call $n" "want $want" "$(cat "$TMP/iso_prompts")"
done

# ---- breaker transitions of the earlier execution are in the resumed report ------------------
make_manifest breaker "$TMP/crashed_b"
fr run "$TMP/breaker.yaml" --json --journal "$TMP/jb"
[ "$rc" -gt 128 ] && ok "breaker run dies after its breaker opened (exit $rc)" ||
  not_ok "breaker run dies after its breaker opened" "exit $rc"
fr run "$TMP/breaker.yaml" --json
expect_rc "breaker run, uninterrupted" 0
jq -c .breaker_transitions "$TMP/out" >"$TMP/bt_ref"
fr resume "$TMP/jb" --json --trace "$TMP/bt.json"
expect_rc "breaker run resumed" 0
expect_jq "resumed report: the journaled transition, from the first execution" \
  '.breaker_transitions == [{"breaker": "agent:flaky", "from": "closed", "to": "open", "step": "first", "attempt": 1, "reason": "failure_threshold consecutive failures"}]'
[ "$(jq -c .breaker_transitions "$TMP/out")" = "$(cat "$TMP/bt_ref")" ] &&
  ok "resumed report: transitions as the uninterrupted run's" ||
  not_ok "resumed report: transitions as the uninterrupted run's" "$(cat "$TMP/bt_ref")"
jq -e '.breaker_transitions | length == 1' "$TMP/bt.json" >/dev/null &&
  ok "resumed trace: the journaled transition" || not_ok "resumed trace: the journaled transition"
[ "$(grep -c '"t":"transition"' "$TMP/jb")" = 1 ] &&
  ok "a journaled transition is not journaled again by the resume" ||
  not_ok "a journaled transition is not journaled again" "$(grep -c '"t":"transition"' "$TMP/jb")"

# ---- broken and foreign journals ---------------------------------------------------------
# Half-written last entry: resumed from the entry before it.
size=$(wc -c <"$TMP/j1.killed")
last=$(tail -1 "$TMP/j1.killed" | wc -c)
head -c $((size - last / 2)) "$TMP/j1.killed" >"$TMP/jt"
fake_reset "$PORT"
fr resume "$TMP/jt" --json
expect_rc "truncated journal resumes" 0
expect_err "truncated journal" "the last entry was half-written"
[ "$(requests)" = 2 ] && ok "truncated journal: only s4 and s5 call the vendor" ||
  not_ok "truncated journal: only s4 and s5 call the vendor" "got $(requests)"
# A corrupted entry is refused with its position.
awk 'NR == 5 { sub(/"index":0/, "\"index\":1") } { print }' "$TMP/j1.killed" >"$TMP/jc"
offset=$(head -4 "$TMP/j1.killed" | wc -c)
fr resume "$TMP/jc"
expect_rc "corrupted journal" 2
expect_err "corrupted journal" "entry 5 (byte $offset) is corrupted: checksum mismatch"
# Another manifest: a divergence unless --allow-changed.
cp "$TMP/j1.killed" "$TMP/jm"
{ echo "# changed"; cat "$TMP/chain.yaml"; } >"$TMP/other.yaml"
fr resume "$TMP/jm" --manifest "$TMP/other.yaml"
expect_rc "journal of another manifest" 1
expect_err "journal of another manifest" "differs from the journal's (sha256"
[ "$(wc -c <"$TMP/jm")" = "$size" ] && ok "a refused resume leaves the journal as it was" ||
  not_ok "a refused resume leaves the journal as it was"
fr resume "$TMP/jm" --manifest "$TMP/other.yaml" --allow-changed --json
expect_rc "--allow-changed resumes" 0
# Not a journal at all.
fr resume "$TMP/ref.json"
expect_rc "a trace is not a journal" 2
expect_err "a trace is not a journal" "entry 1 (byte 0) is corrupted"

# ---- FLUXROUTE_JOURNAL_DIR, sync settings, option errors ----------------------------------
mkdir "$TMP/jdir"
FLUXROUTE_JOURNAL_DIR="$TMP/jdir" fr run "$TMP/chain.yaml" --json --journal-sync off
expect_rc "FLUXROUTE_JOURNAL_DIR" 0
RID=$(jq -r .run_id "$TMP/out")
[ -s "$TMP/jdir/$RID.journal" ] && ok "FLUXROUTE_JOURNAL_DIR: one file per run, named by its id" ||
  not_ok "FLUXROUTE_JOURNAL_DIR: one file per run" "$(ls "$TMP/jdir")"
expect_err "FLUXROUTE_JOURNAL_DIR" "journal $TMP/jdir/$RID.journal"
for s in effect step off; do
  fr run "$TMP/chain.yaml" --json --journal "$TMP/js-$s" --journal-sync "$s"
  expect_rc "--journal-sync $s" 0
  fr resume "$TMP/js-$s" --json
  expect_jq "--journal-sync $s: every step journaled" '[.steps[] | .from_journal] | all'
done
fr run "$TMP/chain.yaml" --journal "$TMP/js-step"
expect_rc "an existing journal file is not overwritten" 2
expect_err "an existing journal file" "cannot create journal"
fr run "$TMP/chain.yaml" --journal "$TMP/jx" --journal-sync sometimes
expect_rc "bad --journal-sync" 2
expect_err "bad --journal-sync" "expected effect, step or off"
fr run "$TMP/chain.yaml" --journal-sync effect
expect_rc "--journal-sync without a journal" 2

finish
