#!/usr/bin/env bash
# A fine-tuning candidate screened against the recipe with paired seeds, on tuning rows only
# (docs/P12.md, "Session 16": one seed of each on two folds decides on differences the size of
# the seed's own spread, about 0.01 of kept tuning log loss per fold).
#
#   STORE=S SPLIT_KEY=K MODELS=D OUT=O [FOLDS="1 3"] [SEEDS="1 2 3"] \
#     bash bench/p12_screen.sh NAME [eval options of the candidate ...]
#
# MODELS holds each fold's pretrained member as fJ.model (bench/p12_model_cv.sh writes them;
# each is copied before eval, which writes its head into the bundle). For every fold J and seed
# S, the recipe's fine-tuning (bench/p12_recipe.sh: P12_FT and P12_AUX, one thread) runs once
# as it stands, into OUT/recipe/fJ.sS, and once with the candidate's options, into
# OUT/NAME/fJ.sS; a run whose metrics.json exists is reused, so the reference is paid once for
# every candidate screened with the same OUT (a NAME's runs only under the options they were made
# with: NAME again with others is refused). Then it prints, per fold, each seed's kept tuning
# log loss of both and the mean difference with its standard error over the seeds, and the same
# pooled over the folds. Nothing held out is read: the table comes from the runs' settings
# (tuning rows), never from their metrics on held-out rows. Write the rule before running it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/p12_recipe.sh
: "${STORE:?set STORE to the de-identified PhysioNet 2012 store}"
: "${SPLIT_KEY:?set SPLIT_KEY (bench/p12.split-key holds the published folds)}"
: "${MODELS:?set MODELS to the folder of fJ.model}"
: "${OUT:?set OUT}"
[ $# -ge 1 ] || { echo "usage: STORE=... SPLIT_KEY=... MODELS=... OUT=... bash bench/p12_screen.sh NAME [options]" >&2; exit 1; }
NAME=$1
shift
[ "$NAME" != recipe ] || { echo "p12_screen: the candidate cannot be called recipe (the reference's folder)" >&2; exit 1; }
CLINFM=${CLINFM:-build/clinfm}
FOLDS=${FOLDS:-1 3}
SEEDS=${SEEDS:-1 2 3}
TASK=tasks/physionet2012_in_hospital_death.task
mkdir -p "$OUT/recipe" "$OUT/$NAME"
# a candidate's runs are reused only under the options they were made with
opts="$*"
if [ -f "$OUT/$NAME/options.txt" ] && [ "$(cat "$OUT/$NAME/options.txt")" != "$opts" ]; then
  echo "p12_screen: $OUT/$NAME was screened with other options ($(cat "$OUT/$NAME/options.txt")); give this candidate another NAME" >&2
  exit 1
fi
printf '%s\n' "$opts" > "$OUT/$NAME/options.txt"
# run DIR J S [options]: one fine-tuning, unless its metrics.json is there
run() {
  local dir=$1 j=$2 s=$3
  shift 3
  local out=$dir/f$j.s$s
  if [ -s "$out/metrics.json" ]; then return 0; fi
  [ -d "$MODELS/f$j.model" ] || { echo "p12_screen: $MODELS/f$j.model is missing" >&2; exit 1; }
  rm -rf "$out" "$out.model"
  cp -r "$MODELS/f$j.model" "$out.model"
  # shellcheck disable=SC2086
  if ! nice "$CLINFM" eval --task "$TASK" --store "$STORE" --model "$out.model" --out "$out" --split-key "$SPLIT_KEY" \
      --split 70/10/20 --fold "$j/5" --baselines none --model-predictors finetuned_e2e $P12_FT $P12_AUX "$@" \
      --seed "$s" --threads 1 --bootstrap 20 > "$out.log" 2>&1; then
    echo "p12_screen: the run in $out failed; its log is $out.log" >&2
    exit 1
  fi
  rm -rf "$out.model"
  echo "p12_screen: $(basename "$dir") fold $j seed $s done ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
}
for j in $FOLDS; do
  for s in $SEEDS; do
    run "$OUT/recipe" "$j" "$s"
    run "$OUT/$NAME" "$j" "$s" "$@"
  done
done
python3 - "$OUT" "$NAME" "$FOLDS" "$SEEDS" <<'PY'
import json, math, sys
out, name, folds, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
def kept(d):
    m = json.load(open(f"{d}/metrics.json"))
    (p,) = [p for p in m["predictors"] if p["name"] == "finetuned_e2e"]
    return p["settings"]["runs"][0]["tuning_log_loss"]
def line(label, diffs):
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return f"{label}: difference {mean:+.4f} (one pair: no standard error; screen with two seeds or more)"
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)
    return f"{label}: mean difference {mean:+.4f} (standard error {se:.4f}, {n} pairs)"
print(f"kept tuning log loss, {name} against the recipe (tuning rows only; lower is better)")
alld = []
for j in folds:
    r = [kept(f"{out}/recipe/f{j}.s{s}") for s in seeds]
    c = [kept(f"{out}/{name}/f{j}.s{s}") for s in seeds]
    d = [b - a for a, b in zip(r, c)]
    alld += d
    print(f"fold {j}: recipe " + " ".join(f"{x:.4f}" for x in r) + f" | {name} " + " ".join(f"{x:.4f}" for x in c))
    print("  " + line(f"fold {j}", d))
print(line("all folds", alld))
PY
