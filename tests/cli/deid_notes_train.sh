#!/usr/bin/env bash
# clinfm deid-notes, deid-train and deid-text: generated corpora in the three layouts read back by
# deid-eval with the same annotation count; a small model trained on generated notes loads and
# finds the PHI of held-apart-name notes; --explain gives one line per span with its type,
# probability and evidence; usage and input errors exit 1 without echoing text. Needs no dataset.
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
: "${CLINFM:?set CLINFM to the clinfm binary}"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
mkdir -p "$T"

grep -q -- "--names" <<<"$("$CLINFM" deid-notes --help)" || fail "deid-notes --help"
"$CLINFM" deid-notes --out "$T/x.json" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing --n must exit 1"
"$CLINFM" deid-notes --out "$T/x.json" --n 3 --format xml >/dev/null 2>&1; [ $? -eq 1 ] || fail "bad --format must exit 1"
for fmt in presidio phrase physionet; do
  "$CLINFM" deid-notes --out "$T/g.$fmt" --n 30 --seed 5 --names heldout --format $fmt 2>"$T/n.$fmt.txt" \
    || fail "deid-notes $fmt"
done
n=$(sed -n 's/.* \([0-9]*\) annotations written.*/\1/p' "$T/n.presidio.txt")
[ -n "$n" ] && [ "$n" -gt 30 ] || fail "annotation count: $n"
for fmt in presidio phrase physionet; do
  f=$fmt; [ $fmt = physionet ] && f=phrase
  js=$("$CLINFM" deid-eval --corpus "$T/g.$fmt" --format $f --json) || fail "deid-eval of the $fmt notes"
  grep -q "\"annotations\":[[:space:]]*$n," <<<"$js" || fail "$fmt: annotations differ from $n"
done

# a small model on listed-name notes, scored on the held-apart-name notes (at the shipped
# model's calibrated threshold; the stricter ones keep their defaults)
"$CLINFM" deid-train --out "$T/m.tsv" --generate 80 --epochs 2 --seed 3 --threshold 0.9 2>"$T/train.txt" || fail "deid-train: $(cat "$T/train.txt")"
head -1 "$T/m.tsv" | grep -q "^# clinfm deid model 1" || fail "model file header"
mkdir -p "$T/rules"
for f in data/deid/*; do ln -sf "$PWD/$f" "$T/rules/"; done
rm -f "$T/rules/model.tsv"; cp "$T/m.tsv" "$T/rules/model.tsv"
"$CLINFM" deid-eval --rules "$T/rules" --corpus "$T/g.presidio" --format presidio --min-recall 0.80 \
  --min-precision 0.80 >"$T/e.txt" || fail "small model below 0.80: $(grep '^OVERALL ' "$T/e.txt")"
"$CLINFM" deid-train --out "$T/m2.tsv" >/dev/null 2>&1; [ $? -eq 1 ] || fail "deid-train without data must exit 1"
"$CLINFM" deid-train --out "$T/m2.tsv" --corpus presidio:/nonexistent.json 2>"$T/err.txt"; [ $? -eq 1 ] || fail "missing corpus must exit 1"
printf '# clinfm deid model 1\nw0=x\tNAME:zzz\n' > "$T/rules/model.tsv"
"$CLINFM" deid-text --rules "$T/rules" --in /dev/null 2>"$T/err2.txt"; [ $? -eq 1 ] || fail "bad model must exit 1"
grep -q "model.tsv:2:" "$T/err2.txt" || fail "bad model error names no line: $(cat "$T/err2.txt")"
printf '# clinfm deid model 1\n@list_person_gate\t2\n' > "$T/rules/model.tsv"
"$CLINFM" deid-text --rules "$T/rules" --in /dev/null 2>"$T/err2b.txt"; [ $? -eq 1 ] || fail "bad switch must exit 1"
grep -q "model.tsv:2: list_person_gate must be 0 or 1" "$T/err2b.txt" || fail "bad switch message: $(cat "$T/err2b.txt")"

# deid-text with the shipped model: tags, shifting with ordinals, explain
printf 'Son, Penny, called. DR QUILL aware. pager 43210. Seen March 3rd.\n' > "$T/note.txt"
out=$("$CLINFM" deid-text --in "$T/note.txt" --shift-days 182) || fail "deid-text"
grep -q "September 1st" <<<"$out" || fail "ordinal not shifted: $out"
grep -q "Penny\|QUILL\|43210" <<<"$out" && fail "PHI left: $out"
ex=$("$CLINFM" deid-text --in "$T/note.txt" --explain) || fail "explain"
[ "$(wc -l <<<"$ex")" -ge 4 ] || fail "explain lists too few spans: $ex"
awk -F'\t' 'NF != 6 || $4 < 0 || $4 > 1 || $5 !~ /^P\(PHI\)=/ {bad=1} END {exit bad}' <<<"$ex" || fail "explain format: $ex"
"$CLINFM" deid-text --in "$T/none.txt" 2>"$T/err3.txt"; [ $? -eq 1 ] || fail "missing input must exit 1"
# round 13: the held-apart short-line style (mixed case, no sentence end at a line's end) and
# the training kind deid-train --generate-lines adds (--style lines)
"$CLINFM" deid-notes --out "$T/sl.txt" --n 20 --seed 7 --names heldout --style shortline --format phrase 2>/dev/null || fail "deid-notes --style shortline"
[ "$(grep -c '^##RECORD' "$T/sl.txt")" -eq 20 ] || fail "shortline: 20 records expected"
grep -q '{{NAME:' "$T/sl.txt" || fail "shortline notes hold no name"
grep -v '^##' "$T/sl.txt" | grep -qE '[a-z]{3}\.$' && fail "shortline notes end a line with a full stop"
"$CLINFM" deid-notes --out "$T/ln.txt" --n 13 --seed 7 --style lines --format phrase 2>/dev/null || fail "deid-notes --style lines"
"$CLINFM" deid-notes --out "$T/x.txt" --n 2 --style nosuch 2>/dev/null; [ $? -eq 1 ] || fail "unknown style must exit 1"
echo "deid_notes_train: ok"
