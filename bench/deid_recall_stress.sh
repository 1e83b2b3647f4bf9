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
    for c in as_is upper lower; do
      "$CLINFM" deid-eval --corpus "$f" --format phrase $([ $c = as_is ] || echo --case $c) --json > "$T/r.json"
      /usr/bin/python3 -c '
import json,sys
a=json.load(open(sys.argv[1]))["overall_safe_harbor"]["any_overlap"]
print("seed %-6s %-8s %-6s gold %5d  missed %4d  recall %.4f  precision %.4f" % (sys.argv[2], sys.argv[3], sys.argv[4],
      a["gold"], a["gold"] - a["gold_found"], a["recall"], a["precision"]))' "$T/r.json" "$seed" "$names" "$c"
    done
  done
done
