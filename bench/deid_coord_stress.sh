#!/usr/bin/env bash
# Stress notes for round 11's shapes (docs/DEID.md, "Round 11"): names inside running text with no
# cue a line gives, coordinated by "and", "&" or "or" with a role word, a relative or another name
# ("RN and SMITH aware", "mary and joy visited", "spoke w/ wife and Ned re plan"). Writes N notes of
# the training kinds (clinfm deid-notes --style train) with held-apart names (data/deid/heldout/,
# which the de-identifier never reads) per seed, scores them as written, upper- and lower-cased,
# and prints the gold spans missed and recall overall and for the name spans next to "and"/"&"/
# "or" (the class is read from the note text around each span; no text is printed). Nothing is kept.
#
#   bash bench/deid_coord_stress.sh [SEED...]     (default seeds 5151 8080; CLINFM=build/clinfm)
#
# GEN=BIN writes the notes with another build (default CLINFM), so main can score the same notes:
# GEN=build/clinfm CLINFM=/path/to/main/clinfm CLINFM_DEID_RULES=/path/to/main/data/deid.
# Seed 5151 is the building seed (its errors were read); 8080 is held out (only totals printed).
set -euo pipefail
cd "$(dirname "$0")/.."
CLINFM=${CLINFM:-build/clinfm}
GEN=${GEN:-$CLINFM}
SEEDS=${*:-5151 8080}
N=${N:-1500}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for seed in $SEEDS; do
  f="$T/notes-$seed.txt"
  "$GEN" deid-notes --out "$f" --n "$N" --format phrase --names heldout --seed "$seed" 2>/dev/null
  for c in as_is upper lower; do
    "$CLINFM" deid-eval --corpus "$f" --format phrase $([ $c = as_is ] || echo --case $c) --json \
      --errors "$T/err.txt" > "$T/r.json"
    /usr/bin/python3 - "$f" "$T/err.txt" "$T/r.json" "$seed" "$c" <<'PY'
import json, re, sys
corpus, errs, res, seed, case = sys.argv[1:]
# a name span is "coordinated" when "and", "&" or "or" stands right before or after it
L = re.compile(r'(?:\band|&|\bor)\s*$', re.I)
R = re.compile(r'^\s*(?:and\b|&|or\b)', re.I)
def coord(left, right):
    return bool(L.search(left) or R.search(right))
gold = 0
text = open(corpus, encoding='utf-8').read()
for m in re.finditer(r'\{\{NAME:([^}]*)\}\}', text):
    left = re.sub(r'\{\{[A-Z_0-9]+:|\}\}', '', text[max(0, m.start() - 60):m.start()])
    right = re.sub(r'\{\{[A-Z_0-9]+:|\}\}', '', text[m.end():m.end() + 60])
    gold += coord(left, right)
miss = 0
for line in open(errs, encoding='utf-8'):
    p = line.rstrip('\n').split('\t')
    if len(p) < 4 or p[0] != 'MISS' or p[2] != 'NAME':
        continue
    ctx = p[3]
    a, b = ctx.find('[['), ctx.find(']]')
    if a < 0 or b < 0:
        continue
    miss += coord(ctx[:a].replace('|', '\n'), ctx[b + 2:].replace('|', '\n'))
o = json.load(open(res))["overall_safe_harbor"]["any_overlap"]
print("seed %-6s %-6s gold %5d missed %4d recall %.4f precision %.4f | coordinated names %4d missed %3d recall %.4f"
      % (seed, case, o["gold"], o["gold"] - o["gold_found"], o["recall"], o["precision"], gold, miss,
         1 - miss / gold if gold else float('nan')))
PY
  done
done
