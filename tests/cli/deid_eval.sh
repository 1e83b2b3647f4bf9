#!/usr/bin/env bash
# clinfm deid-eval: usage errors, both corpus formats, JSON output, floors, and no corpus text in
# error messages. Run from the repository root with CLINFM set to the binary.
set -u
. tests/cli/lib.sh
need_data PRESIDIO deid-dev/presidio-synth-dev.json
fail() { echo "FAIL: $*" >&2; exit 1; }
: "${CLINFM:?set CLINFM to the clinfm binary}"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
out=$("$CLINFM" deid-eval --help) || fail "--help exit status"
grep -q -- "--corpus" <<<"$out" || fail "--help does not describe --corpus"
"$CLINFM" deid-eval --bogus >/dev/null 2>&1; [ $? -eq 1 ] || fail "unknown option must exit 1"
"$CLINFM" deid-eval --format presidio >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing --corpus must exit 1"
"$CLINFM" deid-eval --corpus x --format xml >/dev/null 2>&1; [ $? -eq 1 ] || fail "bad --format must exit 1"
"$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --format phrase --min-recall 2 \
  >/dev/null 2>&1; [ $? -eq 1 ] || fail "--min-recall out of range must exit 1"

# the phrase corpus as a table and as JSON
out=$("$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --format phrase) || fail "phrase run"
grep -q "^OVERALL" <<<"$out" || fail "no OVERALL row"
grep -q "NRP, TITLE and ages under 90 are excluded" <<<"$out" || fail "scope note missing"
js=$("$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --format phrase --json) || fail "json run"
grep -q '"overall_safe_harbor"' <<<"$js" || fail "json lacks overall_safe_harbor"
grep -q '"records":[[:space:]]*23' <<<"$js" || fail "json record count"

# the presidio corpus with the issue's precision floor and a recall floor
"$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio \
  --min-recall 0.97 --min-precision 0.90 >"$T/p.txt" || fail "presidio floors not met"
grep -q "^NAME" "$T/p.txt" || fail "no NAME row"

# a floor above the measured recall exits 1, and says so
"$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --min-recall 0.9999 \
  >/dev/null 2>"$T/floor.txt"; rc=$?
[ $rc -eq 1 ] || fail "unmet floor must exit 1 (got $rc)"
grep -q "below --min-recall" "$T/floor.txt" || fail "unmet floor not reported"

# both date scorings are reported: every annotated date, and only dates naming a day or month
grep -q "^DATE d/m" "$T/p.txt" || fail "no 'DATE d/m' row"
grep -q "^OVERALL d/m" "$T/p.txt" || fail "no 'OVERALL d/m' row"
grep -q "a year only" "$T/p.txt" || fail "date scope counts missing"
js=$("$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --json) || fail "presidio json"
grep -q '"overall_safe_harbor_day_month"' <<<"$js" || fail "json lacks overall_safe_harbor_day_month"
grep -q '"year_only"' <<<"$js" || fail "json lacks date_scope.year_only"

# --records: a development half and a confirmation half, scored apart
a=$("$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --json --records 0-374) \
  || fail "--records 0-374"
b=$("$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --json --records 375-749) \
  || fail "--records 375-749"
grep -q '"records":[[:space:]]*375' <<<"$a" || fail "--records 0-374 must score 375 records"
grep -q '"records":[[:space:]]*375' <<<"$b" || fail "--records 375-749 must score 375 records"
na=$(grep -o '"annotations":[[:space:]]*[0-9]*' <<<"$a" | grep -o '[0-9]*$')
nb=$(grep -o '"annotations":[[:space:]]*[0-9]*' <<<"$b" | grep -o '[0-9]*$')
[ $((na + nb)) -eq 1402 ] || fail "the halves' annotations must add up to the corpus' 1402 (got $na + $nb)"
"$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --records 700-800 \
  >/dev/null 2>&1; [ $? -eq 1 ] || fail "--records past the end must exit 1"
"$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --records 9-3 \
  >/dev/null 2>&1; [ $? -eq 1 ] || fail "--records B<A must exit 1"
"$CLINFM" deid-eval --corpus "$PRESIDIO" --format presidio --records x \
  >/dev/null 2>&1; [ $? -eq 1 ] || fail "--records x must exit 1"

# bad corpus: error names file and line, never the annotation text
printf '##RECORD 1\nSeen by {{NAME:Ottoline Braithwaite without closing\n' >"$T/bad.txt"
"$CLINFM" deid-eval --corpus "$T/bad.txt" --format phrase >/dev/null 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || fail "bad corpus must exit 1 (got $rc)"
grep -q "bad.txt:" "$T/err.txt" || fail "error does not name the file"
grep -q -i "ottoline\|braithwaite" "$T/err.txt" && fail "error message quotes corpus text"
printf '[{"full_text": "Call Zebulon", "spans": [{"entity_type": "PERSON", "start_position": 5, "end_position": 99}]}]' >"$T/bad.json"
"$CLINFM" deid-eval --corpus "$T/bad.json" --format presidio >/dev/null 2>"$T/err2.txt"; rc=$?
[ $rc -eq 1 ] || fail "bad presidio span must exit 1 (got $rc)"
grep -q -i "zebulon" "$T/err2.txt" && fail "error message quotes corpus text"

# --errors: one MISS or FP line per error, the span in [[...]]; the table itself quotes no text
printf '##RECORD e1\nSeen by {{NAME:Quillfeather}} today.\n##RECORD e2\nCall {{PHONE:555-0143}} or Zebulon.\n' >"$T/err_corpus.txt"
"$CLINFM" deid-eval --corpus "$T/err_corpus.txt" --format phrase --threshold 0.000001 \
  --errors "$T/errors.tsv" >"$T/err_table.txt" || fail "deid-eval --errors failed"
[ -s "$T/errors.tsv" ] || fail "--errors wrote nothing although the near-zero threshold misses the PHI"
grep -q -P '^MISS\te1\tNAME\t.*\[\[Quillfeather\]\]' "$T/errors.tsv" || fail "--errors lacks the missed name"
grep -v -q -P '^(MISS|FP)\t' "$T/errors.tsv" && fail "--errors holds a line that is no MISS/FP line"
grep -q -i "quillfeather" "$T/err_table.txt" && fail "the table quotes corpus text"
"$CLINFM" deid-eval --corpus "$T/err_corpus.txt" --format phrase --errors "$T/nodir/e.tsv" \
  >/dev/null 2>&1; [ $? -ne 0 ] || fail "--errors into a missing folder must fail"

# missing rules folder
"$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --format phrase --rules "$T/none" \
  >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing rules must exit 1"
echo "deid_eval: ok"
