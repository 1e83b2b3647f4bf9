#!/usr/bin/env bash
# Stress notes for the clinical keep filter (docs/DEID.md, "Round 9 (recall)"): generated notes
# whose names ARE clinical words, to measure how many names the filter after the model lets
# through. Builds, in a temporary folder, a rules folder whose held-apart name lists hold the
# family names, given names and places of the shipped lists that are also clinical vocabulary the
# filter reads (clinical_keep.txt, clinical_words.txt, medical_words.txt words that are no common
# English word, one-word clinical_keep_post.txt entries), plus a few family names that are
# clinical words by hand (Foley, Swan, Senna, Homans...); writes 1,500 notes of the training kinds
# and 1,500 of the held-apart event style per seed (clinfm deid-notes --names heldout), and scores
# them as written, upper- and lower-cased. Nothing is kept.
#
#   bash bench/deid_keep_stress.sh [SEED...]        (default seeds 9101 77123; CLINFM=build/clinfm)
#
# Prints gold spans missed, recall and precision per set and casing. The filter's own loss is the
# difference from a build without it; docs/DEID.md gives both for rounds 8 and 9. GEN=BIN writes the
# notes with another build (default CLINFM), so two builds whose generators differ score the same
# notes (round 11); the rules folder the notes are scored with is $CLINFM_DEID_RULES or the shipped one.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLINFM=${CLINFM:-build/clinfm}
GEN=${GEN:-$CLINFM}
SEEDS=${*:-9101 77123}
D=data/deid
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
words() { grep -v '^#' "$1" | tr 'A-Z' 'a-z' | sed 's/[[:space:]]*$//' | grep -v '^$' | LC_ALL=C sort -u; }
words $D/english_words.txt > "$T/en"
words $D/medical_words.txt | LC_ALL=C comm -23 - "$T/en" > "$T/medonly"
words $D/clinical_keep_post.txt | grep -v ' ' > "$T/post1" || true
LC_ALL=C sort -u <(words $D/clinical_keep.txt) <(words $D/clinical_words.txt) "$T/medonly" "$T/post1" |
  grep -E '^[a-z]{3,}$' > "$T/clin"
mkdir -p "$T/rules/heldout"
for f in "$D"/*; do [ "$(basename "$f")" = heldout ] || ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$T/rules/"; done
{ echo "# stress"; { words $D/last_names.txt | LC_ALL=C comm -12 "$T/clin" -
    printf '%s\n' foley swan black green hill mark wells hunt king bishop senna homans pratt kerley grant rich \
      dawn heart bowel pace lamb coombs murphy kernig graves addison cushing; } | LC_ALL=C sort -u; } \
  > "$T/rules/heldout/last_names.txt"
{ echo "# stress"; LC_ALL=C sort -u <(words $D/first_names.txt | LC_ALL=C comm -12 "$T/clin" -) \
    <(words $D/heldout/first_names.txt); } > "$T/rules/heldout/first_names.txt"
{ echo "# stress"; words $D/places.txt | LC_ALL=C comm -12 "$T/clin" -; } > "$T/rules/heldout/places.txt"
echo "stress lists: $(($(wc -l < "$T/rules/heldout/last_names.txt") - 1)) family names, $(($(wc -l < "$T/rules/heldout/places.txt") - 1)) places"
for seed in $SEEDS; do
  for style in train heldout; do
    f="$T/notes-$seed-$style.txt"
    "$GEN" deid-notes --out "$f" --n 1500 --format phrase --names heldout --style "$style" --seed "$seed" \
      --rules "$T/rules" 2>/dev/null
    bench_deid_stress_score "$f" "$seed" "$style"
  done
done
