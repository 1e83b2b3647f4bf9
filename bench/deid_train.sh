#!/usr/bin/env bash
# Fits the text de-identifier's model and writes data/deid/model.tsv (or $OUT): the one command
# that makes the committed model, so anyone can rebuild it.
#
#   bash bench/deid_train.sh
#
# Training material (docs/DEID.md, "The model"):
#  - generated clinical notes (src/synth/notes.c): $GEN notes, names from the de-identifier's own
#    lists (never the held-apart ones), nursing/progress/discharge kinds (never the held-apart
#    event-note style), every casing; and $LINES (default 0) run-on nursing notes broken into
#    short lines (round 13: notes the list-note feature weighs as lists that hold PHI; never the
#    held-apart short-line style of deid-notes --style shortline);
#  - the presidio synthetic set ($CLINFM_DATA/deid-dev, MIT), records 0-374 only: 375-749 are
#    held out as a check and never trained on; each note also upper- and lower-cased;
#  - the fictional fixtures tests/data/clinical-notes-phrase.txt and tests/data/deid-physionet.
# The list features stand aside beside a person cue (--list-person-gate, round 13, adopted).
# Round 16 (docs/DEID.md, round 16: candidate E3m, adopted under the rule written before its
# refit): the lines notes broken as fixed in round 14 (src/synth/notes.c, lines_note), round 15's
# note-level catalogue test (--list-catalogue-test) and an ampersand-joined firm the model touches
# taken whole as an organisation (--amp-firm-span).
# Round 19 (docs/DEID.md, round 19: candidate A, adopted under the rule written before it was
# built): the keep filter keeps a clinical word in no name or place list beside a credential or
# suffix after it, or alone on its line (--keep-unnamed; a decoding switch: the weights are E3m's).
# Round 21 (docs/DEID.md, round 21: candidate C'', adopted under the rule written before it was
# built): round 19's one-case field lists (--one-case-fields), round 20's title cue read in any case
# there (--one-case-cue 1) and a date on a field line with its own person evidence kept
# (--field-dates); decoding switches: the weights are A's (E3m's).
# Round 22 (docs/DEID.md, round 22: candidate N1, adopted under the rule written before it was
# built): nursing shorthand the model took is dropped after it (--nursing-shorthand 1): a slash
# chain after a ventilator word or closed by "%" is no date, a letter or two glued to "+" no name;
# a decoding switch: the weights are C''s (A's).
# Round 23 (docs/DEID.md, round 23: candidate S1, adopted under the rule written before it was
# built): --nursing-shorthand 3, N1 and, on any label, a bare host of common words the URL pattern
# types ("2.Pt"), a signed number of under seven digits ("+900") and a pain score "a/10" after
# pain/score/scale are dropped; a decoding switch: the weights are N1's (C''s, A's).
# Earlier recipes (with OUT= a temporary file):
#   round 13's model (shipped in rounds 13-15), at commit 0114320: LINES_R13=--lines-r13 ROUND16= ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh
#   round 12's model, at commit 0114320: LINES=0 ROUND13= LINES_R13=--lines-r13 ROUND16= ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh
#   round 16's candidate F (not chosen; its switch removed in session 18, at commit 87052d5): ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh --catalogue-prep
#   round 17's candidates G and G+F (not adopted; G at commit 0114320, G+F at 87052d5): ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh --prep-titles [--catalogue-prep]
#   round 18's candidate G0 (not adopted; at commit 0114320): ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh --prep-titles --prep-titles-names 0
#   round 16's E3m (shipped in rounds 16-18): ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh
#   round 19's candidate C (not adopted): ROUND19= ROUND21= ROUND22= bash bench/deid_train.sh --one-case-fields
#   round 20's candidates C' and C't (not adopted): ROUND21= ROUND22= bash bench/deid_train.sh --one-case-fields --one-case-cue 2 (or 1)
#   round 19's A (shipped in rounds 19-20): ROUND21= ROUND22= bash bench/deid_train.sh
#   round 21's C'' (shipped in round 21): ROUND22= bash bench/deid_train.sh
#   round 22's candidate N2 (not chosen: tied with N1): ROUND22= bash bench/deid_train.sh --nursing-shorthand 2
#   round 22's N1 (shipped in round 22): ROUND22='--nursing-shorthand 1' bash bench/deid_train.sh
#   round 23's candidate S2 (not adopted): ROUND22='--nursing-shorthand 4' bash bench/deid_train.sh
#   round 24's candidates L1 and L2 (features; not adopted; at commit 87052d5): bash bench/deid_train.sh --line-shorthand 1 (or 2)
#   round 25's candidates M1 and M2 (not adopted; M2 at commit 87052d5): bash bench/deid_train.sh --name-lines [--line-open-feature]
#   round 26's candidate C (one-line contrast notes): bash bench/deid_train.sh --contrast-lines
#   round 27's candidates C2 and C3 (not adopted): bash bench/deid_train.sh --contrast-lines --contrast-names [--name-lines]
#   round 28's candidates C4, C5, C6 (not adopted): bash bench/deid_train.sh --contrast-lines --contrast-names --name-lines
#     --contrast-mixed (C4), --contrast-thin (C5), or both (C6)
#   round 29: C3 and C4 again, under a rule weighing recall (not adopted: both fail rule 3w on presidio 375-749 in one case)
#   round 30's candidates D75 and D70 (a decoding line, no refit; not adopted on S1 or on C4): the
#     base's command with --threshold-dense 0.75 (or 0.70), the same weights and threshold as the base
# Nothing else is read: no MIMIC, Synthea, terminology or OMOP text (those are the negative
# material the clinical-content cost is measured on).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLINFM=${CLINFM:-build/clinfm}
# Round 31 (docs/DEID.md, round 31: candidate R, adopted under the rule written before it was
# built): a note dense with clinical keep-list words (density class '3') is decoded by a second
# model, data/deid/model_dense.tsv: this recipe plus round 28's C4 material (--contrast-lines
# --contrast-names --name-lines --contrast-mixed: one-line contrast notes in mixed case and
# name-opening lines). Both files are written by default; DENSE_OUT= skips the second, and with OUT
# set and DENSE_OUT unset only OUT is written (one model, as every earlier recipe below).
if [ -z "${OUT+x}" ]; then DENSE_OUT=${DENSE_OUT-data/deid/model_dense.tsv}; else DENSE_OUT=${DENSE_OUT-}; fi
ROUND31=${ROUND31---contrast-lines --contrast-names --name-lines --contrast-mixed}
OUT=${OUT:-data/deid/model.tsv}
GEN=${GEN:-5200}
CALIB=${CALIB:-3000}
LINES=${LINES:-1200}
# Set empty (ROUND13=) for round 12's recipe; unquoted below on purpose: several switches.
ROUND13=${ROUND13---list-person-gate --coded-prose}
ROUND16=${ROUND16---list-catalogue-test --amp-firm-span}
ROUND19=${ROUND19---keep-unnamed}
ROUND21=${ROUND21---one-case-fields --one-case-cue 1 --field-dates}
ROUND22=${ROUND22---nursing-shorthand 3}
EPOCHS=${EPOCHS:-8}
DEV=$(bench_data deid-dev)
# fit OUTFILE [SWITCHES...]: the recipe, the caller's arguments last
fit() {
  local out=$1
  shift
  "$CLINFM" deid-train --out "$out" --epochs "$EPOCHS" --generate "$GEN" --generate-lines "$LINES" --seed 1 --cases --verbose --calibrate "$CALIB" \
    --corpus "presidio:$DEV/presidio-synth-dev.json@0-374" \
    --corpus phrase:tests/data/clinical-notes-phrase.txt \
    --corpus phrase:tests/data/deid-physionet $ROUND13 $ROUND16 $ROUND19 $ROUND21 $ROUND22 "$@"
}
fit "$OUT" "$@"
# unquoted on purpose: several switches
# Round 52 (docs/DEID.md, round 52): the dense model alone also trains on the spent hand-written
# nursing sets with PHI (ROUND52=sets: candidate H'), and with them on the spent one-line shorthand
# halves with no PHI (ROUND52=sets+shorthand: candidate H). Empty: the shipped recipe.
ROUND52=${ROUND52-}
DENSE_EXTRA=()
case "$ROUND52" in
  '') ;;
  sets|sets+shorthand)
    for s in $(seq 1 36); do DENSE_EXTRA+=(--corpus "phrase:tests/data/deid-nursing-phi-hold$s.txt"); done
    if [ "$ROUND52" = sets+shorthand ]; then
      # one corpus of the 47 halves' records (deid-train takes at most 64 --corpus options); each
      # half's header comment, before its first ##RECORD line, left out
      SHORTHAND=$(mktemp /tmp/clinfm-shorthand.XXXXXX)
      trap 'rm -f "$SHORTHAND"' EXIT
      for h in dev dev2 dev3 hold $(for i in $(seq 2 44); do echo "hold$i"; done); do
        sed -n '/^##RECORD /,$p' "tests/data/deid-nursing-shorthand.$h.txt" >> "$SHORTHAND"
      done
      DENSE_EXTRA+=(--corpus "phrase:$SHORTHAND")
    fi ;;
  *) echo "deid_train.sh: ROUND52 is empty, sets or sets+shorthand, not '$ROUND52'" >&2; exit 1 ;;
esac
if [ -n "$DENSE_OUT" ]; then fit "$DENSE_OUT" $ROUND31 "${DENSE_EXTRA[@]}" "$@"; fi
