#!/usr/bin/env bash
# Stress notes for the recall classes of round 10 (docs/DEID.md, "Round 10 (recall)"): generated
# telephone messages, dispositions, history years, requests with a ward and sign-offs
# (clinfm deid-notes --style message, a kind deid-train never writes), with listed names and with
# held-apart names (data/deid/heldout/, which the de-identifier never reads), scored as written,
# upper- and lower-cased. Nothing is kept.
#
#   bash bench/deid_recall_stress.sh [SEED...]     (default seeds 4242 77123; CLINFM=build/clinfm)
#
# GEN=BIN writes the notes with another build (default CLINFM), so a build without the message
# style (main before round 10) can score the same notes: GEN=build/clinfm CLINFM=/path/to/main/clinfm.
#
# Seed 4242 is the building seed (its errors were read); 77123 is held out (only its totals are
# printed). Prints gold spans missed, recall and precision per seed, name list and casing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLINFM=${CLINFM:-build/clinfm}
GEN=${GEN:-$CLINFM}
SEEDS=${*:-4242 77123}
N=${N:-1500}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for seed in $SEEDS; do
  for names in listed heldout; do
    f="$T/notes-$seed-$names.txt"
    "$GEN" deid-notes --out "$f" --n "$N" --format phrase --names "$names" --style message --seed "$seed" 2>/dev/null
    bench_deid_stress_score "$f" "$seed" "$names"
  done
done
