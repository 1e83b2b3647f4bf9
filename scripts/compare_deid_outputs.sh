#!/usr/bin/env bash
# Compares the text de-identifier's outputs of two clinfm binaries byte for byte, for changes
# that must not change a single output (speed work on src/deid/). Not part of `make test`.
#
#   bash scripts/compare_deid_outputs.sh REF_CLINFM NEW_CLINFM [WORKDIR]
#
# Inputs: tests/data/clinical-notes-phrase.txt, 300 generated notes (clinfm deid-notes, written
# once by the reference binary so both read the same file), the presidio corpus and a few
# MIMIC-IV demo text fields read in place from $CLINFM_DATA (default ../shared/data; skipped
# when absent). Each goes through `deid-text` in tag mode (dates shifted), surrogate mode and
# --explain; the annotated corpora through `deid-eval --json` (timing lines dropped). Exits 1
# naming every output that differs. Data-derived outputs stay in WORKDIR (a temporary folder by
# default, removed at the end): they hold text from the data sets and are never committed.
set -euo pipefail
REF=${1:?usage: compare_deid_outputs.sh REF_CLINFM NEW_CLINFM [WORKDIR]}
NEW=${2:?usage: compare_deid_outputs.sh REF_CLINFM NEW_CLINFM [WORKDIR]}
cd "$(dirname "$0")/.."
DATA=${CLINFM_DATA:-../shared/data}
W=${3:-}
keep=1
if [ -z "$W" ]; then W=$(mktemp -d); keep=0; fi
rm -rf "$W/ref" "$W/new"
mkdir -p "$W/in" "$W/ref" "$W/new"
cleanup() { [ "$keep" = 1 ] || rm -rf "$W"; }
trap cleanup EXIT

# inputs
cp tests/data/clinical-notes-phrase.txt "$W/in/phrase.txt"
"$REF" deid-notes --n 300 --format phrase --seed 7 --out "$W/in/gen.txt" >/dev/null
"$REF" deid-notes --n 200 --format presidio --style heldout --names heldout --seed 11 \
  --out "$W/in/gen-heldout.json" >/dev/null
texts="phrase.txt gen.txt"
evals="phrase.txt:phrase gen.txt:phrase gen-heldout.json:presidio"
if [ -f "$DATA/deid-dev/presidio-synth-dev.json" ]; then
  cp "$DATA/deid-dev/presidio-synth-dev.json" "$W/in/presidio.json"
  texts="$texts presidio.json"
  evals="$evals presidio.json:presidio"
fi
if [ -d "$DATA/mimic-iv-demo" ]; then
  for f in hosp/d_labitems icu/d_items hosp/prescriptions hosp/microbiologyevents; do
    g="$DATA/mimic-iv-demo/$f.csv.gz"
    # the first megabyte (zcat stops on the closed pipe: not an error here)
    [ -f "$g" ] && { zcat "$g" | head -c 1000000 >"$W/in/mimic-${f#*/}.txt" || true; }
  done
  texts="$texts $(cd "$W/in" && ls mimic-*.txt 2>/dev/null | tr '\n' ' ')"
fi

run() { # BIN SIDE
  local bin=$1 side=$2 t c f
  for t in $texts; do
    "$bin" deid-text --in "$W/in/$t" --shift-days -17 >"$W/$side/$t.tag"
    "$bin" deid-text --in "$W/in/$t" --surrogate >"$W/$side/$t.sur"
    "$bin" deid-text --in "$W/in/$t" --explain >"$W/$side/$t.explain"
  done
  for c in $evals; do
    f=${c%%:*}
    for cs in asis upper lower; do
      local extra=()
      [ "$cs" = asis ] || extra=(--case "$cs")
      "$bin" deid-eval --corpus "$W/in/$f" --format "${c##*:}" "${extra[@]}" --json \
        | grep -v -i -E '"(seconds|elapsed|time|wall|mb_per_s)[a-z_]*"' >"$W/$side/$f.$cs.eval.json"
      "$bin" deid-eval --corpus "$W/in/$f" --format "${c##*:}" "${extra[@]}" \
        | grep -v -i -E 'seconds|MB/s|elapsed' >"$W/$side/$f.$cs.eval.txt"
    done
  done
}
run "$REF" ref
run "$NEW" new
bad=0
n=0
for f in "$W"/ref/*; do
  b=$(basename "$f")
  n=$((n + 1))
  if ! cmp -s "$f" "$W/new/$b"; then echo "DIFFERS: $b"; bad=1; fi
done
echo "compared $n outputs ($(du -sh "$W/ref" | cut -f1)): $([ $bad = 0 ] && echo identical || echo DIFFERENT)"
exit $bad
