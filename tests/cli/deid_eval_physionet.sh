#!/usr/bin/env bash
# clinfm deid-eval on the PhysioNet deid layout (fictional fixture in tests/data/deid-physionet):
# every way of naming the pair reads the same corpus, realignment is reported, files that do not
# line up or name unknown records fail without quoting PHI, --case works, and the inline layout
# still reads as before. Run from the repository root with CLINFM set to the binary.
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
: "${CLINFM:?set CLINFM to the clinfm binary}"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
D=tests/data/deid-physionet
# expected counts, from the fixture files themselves
n_ann=$(grep -c '[^[:space:]]' "$D/id-phi.phrase")
n_rec=$(grep -c '^START_OF_RECORD=' "$D/id.text")
[ "$n_ann" -gt 20 ] && [ "$n_rec" -ge 6 ] || fail "fixture looks empty"
num() { grep -o "\"$1\":[[:space:]]*[0-9]*" | head -1 | grep -o '[0-9]*$'; }

out=$("$CLINFM" deid-eval --help) || fail "--help"
grep -q -- "--text FILE" <<<"$out" || fail "--help does not describe --text"
grep -q -- "--case" <<<"$out" || fail "--help does not describe --case"
grep -q "PhysioNet deid layout" <<<"$out" || fail "--help does not describe the PhysioNet layout"

# the same corpus however the pair is named
check_json() { # what json
  local js=$2
  [ "$(num records <<<"$js")" = "$n_rec" ] || fail "$1: records $(num records <<<"$js"), want $n_rec"
  [ "$(num annotations <<<"$js")" = "$n_ann" ] || fail "$1: annotations $(num annotations <<<"$js"), want $n_ann"
  grep -q '"layout":[[:space:]]*"physionet"' <<<"$js" || fail "$1: layout not physionet"
  [ "$(num misaligned <<<"$js")" = 0 ] || fail "$1: misaligned annotations"
}
js=$("$CLINFM" deid-eval --corpus "$D" --format phrase --json) || fail "folder"
check_json folder "$js"
js=$("$CLINFM" deid-eval --corpus "$D/id.text" --format phrase --json) || fail "text file"
check_json "text file" "$js"
js=$("$CLINFM" deid-eval --corpus "$D/id-phi.phrase" --format phrase --json) || fail "annotation file"
check_json "annotation file" "$js"
cp "$D/id.text" "$T/notes.txt" && cp "$D/id-phi.phrase" "$T/gold.ann"
js=$("$CLINFM" deid-eval --text "$T/notes.txt" --phi "$T/gold.ann" --json) || fail "--text/--phi"
check_json "--text/--phi" "$js"
grep -q '"text_file":[[:space:]]*".*notes.txt"' <<<"$js" || fail "json does not name the text file"
"$CLINFM" deid-eval --text "$T/notes.txt" --phi "$T/gold.ann" --format presidio >/dev/null 2>&1
[ $? -eq 1 ] || fail "--text with --format presidio must exit 1"

# the table says how the annotations lined up
out=$("$CLINFM" deid-eval --corpus "$D" --format phrase) || fail "table"
grep -q "^PhysioNet deid layout: .*$n_ann annotation lines: 0 realigned (0 inclusive end, 0 nearby), 0 misaligned" \
  <<<"$out" || fail "table lacks the alignment line"
grep -q "^OVERALL" <<<"$out" || fail "no OVERALL row"

# inclusive ends: all realigned, same spans (same strict gold counts)
awk '{ $4 = $4 - 1; print }' "$D/id-phi.phrase" >"$T/incl.phrase"
js=$("$CLINFM" deid-eval --text "$D/id.text" --phi "$T/incl.phrase" --json) || fail "inclusive ends"
[ "$(num realigned_inclusive_end <<<"$js")" = "$n_ann" ] || fail "inclusive ends not all realigned"
[ "$(num misaligned <<<"$js")" = 0 ] || fail "inclusive ends misaligned"

# offsets shifted beyond the window on more than 5% of the lines: an error, without the phrases
k=$((n_ann / 20 + 1))
awk -v k="$k" 'NR <= k { $3 += 20; $4 += 20 } { print }' "$D/id-phi.phrase" >"$T/shift.phrase"
"$CLINFM" deid-eval --text "$D/id.text" --phi "$T/shift.phrase" >/dev/null 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || fail "misaligned corpus must exit 1 (got $rc)"
grep -q "annotations do not line up with the text: $k of $n_ann" "$T/err.txt" || fail "misalignment not reported"
while read -r ph; do
  if grep -qF -- "$ph" "$T/err.txt"; then fail "error message quotes an annotation phrase"; fi
done < <(head -n "$k" "$D/id-phi.phrase" | cut -d' ' -f6-)

# an annotation for a record the text file lacks: FILE:LINE
cp "$D/id-phi.phrase" "$T/unk.phrase"
echo "88 1 0 9 PTName Zanzibarr" >>"$T/unk.phrase"
"$CLINFM" deid-eval --text "$D/id.text" --phi "$T/unk.phrase" >/dev/null 2>"$T/err.txt"; rc=$?
[ $rc -eq 1 ] || fail "unknown record must exit 1 (got $rc)"
grep -q "unk.phrase:$((n_ann + 1)):" "$T/err.txt" || fail "unknown record error does not name FILE:LINE"
if grep -q "Zanzibarr" "$T/err.txt"; then fail "error message quotes the phrase"; fi

# --case: same annotations; ASCII letters counted as changed; bad value is a usage error
up=$("$CLINFM" deid-eval --corpus "$D" --format phrase --case upper --json) || fail "--case upper"
lo=$("$CLINFM" deid-eval --corpus "$D" --format phrase --case lower --json) || fail "--case lower"
[ "$(num annotations <<<"$up")" = "$n_ann" ] || fail "--case upper changed the annotations"
grep -q '"case":[[:space:]]*"upper"' <<<"$up" || fail "json lacks case upper"
grep -q '"case":[[:space:]]*"lower"' <<<"$lo" || fail "json lacks case lower"
lower_letters=$(awk '/^START_OF_RECORD=/{inr=1; next} /^\|\|\|\|END_OF_RECORD/{inr=0; next} inr' "$D/id.text" |
  tr -cd 'a-z' | wc -c)
[ "$(num case_characters_changed <<<"$up")" = "$lower_letters" ] || fail "--case upper changed $(num case_characters_changed <<<"$up") characters, want $lower_letters"
"$CLINFM" deid-eval --corpus "$D" --format phrase --case title >/dev/null 2>&1; [ $? -eq 1 ] || fail "--case title must exit 1"

# the inline layout is read as before
js=$("$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --format phrase --json) || fail "inline"
grep -q '"layout":[[:space:]]*"inline"' <<<"$js" || fail "inline layout not detected"
want=$(awk '/^##RECORD/{on=1} on' tests/data/clinical-notes-phrase.txt | grep -o '{{' | wc -l)
[ "$(num annotations <<<"$js")" = "$want" ] || fail "inline annotations $(num annotations <<<"$js"), want $want"
"$CLINFM" deid-eval --corpus tests/data/clinical-notes-phrase.txt --phi "$D/id-phi.phrase" >/dev/null 2>&1
[ $? -eq 1 ] || fail "--phi with an inline corpus must exit 1"
echo "deid_eval_physionet: ok"
