#!/bin/bash
# The model's cross-validated figures on PhysioNet 2012, beside baseline runs made earlier: per
# fold, pretrain the model on the fold's train rows of the store (early stopping on its tuning
# rows), evaluate the end-to-end fine-tuned model (eval predictor finetuned_e2e) on the fold's
# held-out rows, then pool those runs with the baseline runs of the same folds (clinfm pool merges
# runs of one fold when their held-out rows agree). This is the time-boxed recipe of docs/P12.md;
# bench/p12_eval.sh is the whole benchmark (ingest to table, every predictor, pretraining on 2019).
#
# Usage (from the repository root):
#   C=CLINFM STORE=S SPLIT_KEY=K BASE=DIR OUT=DIR bash bench/p12_model_cv.sh [FOLD...]
#     STORE      the de-identified PhysioNet 2012 store (made as in bench/p12_eval.sh)
#     SPLIT_KEY  the split key the store and the baseline runs used (same folds; default
#                bench/p12.split-key, the benchmark's published folds since session 10)
#     BASE       a folder of baseline evaluations f0..f4 (clinfm eval --fold J/5, e.g. --baselines
#                logreg,xgboost,logreg_values,xgboost_values --score SAPS-I=P12//SAPS-I ...)
#     OUT        work folder: fJ.model, fJ (evaluation), fJ.train.log, fJ.eval.log, pool/; a fold
#                whose model is there already (fJ.train.log ends well) is not retrained, and an
#                evaluation there already (its .eval.log ends well) is not rerun unless its model
#                was just retrained: delete fJ (or fJ.model) to redo it. So once lanes run side by
#                side are done, the same command with POOL=1 and no folds only pools
#     FOLD...    the folds to run (default 0 1 2 3 4); the pool takes every OUT/fJ present
#   C (default build/clinfm), THREADS (2), STEPS (3000, early stopping on tuning loss),
#   FT_EPOCHS (6), FT_LR (1e-3), FT_PATIENCE (6: every epoch runs, the best on tuning log loss is
#   kept), FT_CONTEXT (0: the model's own context; N: fine-tune a copy with an N-token context,
#   eval --ft-context, so the 48-hour histories the 512-token pretrained context cuts, about 80
#   tokens a stay on average, are read whole: 1024 was screened in session 7 and cross-validated
#   no better, docs/P12.md, at about 25-40% more fine-tuning), FT_POOL (extremes: the task head
#   reads the last token's final hidden state, the mean over the history and the channel-wise max
#   and min over it, eval --ft-pool; session 8's recipe, docs/P12.md; "both" is sessions 4-7's), PREDICTORS (finetuned,finetuned_e2e: the frozen model's linear probe and the
#   end-to-end fine-tuning), FT_EXTRA (more clinfm eval options, e.g. --ft-ensemble 3),
#   POOL (1; 0: skip the pool, for lanes run side by side: pool once both are done; with POOL=1
#   the baseline runs BASE/fJ of the folds named must be there before anything runs),
#   PRETRAIN (none; MODEL: a model pretrained on PhysioNet 2019, as made by bench/p12_eval.sh with
#   PRETRAIN=DIR or by `clinfm train --store P19STORE --split-key SPLIT_KEY --split 95/5/0` with the
#   recipe's $P12_ARCH and $P12_PRE19; each fold's model starts from it, train --init, instead of
#   from scratch: screened in session 10, docs/P12.md: a tie on five folds, an option),
#   SEEDS (1: the fine-tuning seeds; each fold's model is fine-tuned once per seed, seed 1 into
#   OUT/fJ, seed S>1 into OUT/fJ.sS, and the pool averages finetuned_e2e over a fold's seeds with
#   clinfm pool --average: a seed ensemble, sessions 6-8's "1 2", which added 0.001 to the
#   extremes pooling in session 8. A seed S>1 whose evaluation is there already is kept),
#   SIZE (small: the recipe's P12_ARCH; big: P12_ARCH_BIG, the recipe's third member since session
#   12 when pretrained from scratch and its fourth since session 13 with PRETRAIN, a 2019 model of
#   that architecture; bench/p12_recipe.sh),
#   JOIN (none; DIR...: the OUT folders of other members of an ensemble, run on the same folds by
#   this script; their fJ runs join the pool and finetuned_e2e and finetuned are averaged over
#   every member of a fold: how the recipe's two pretrainings are pooled, below)
#
# The recipe since session 13 (docs/P12.md) is an ensemble of four members per fold: the model
# pretrained from scratch on the fold's rows, the model pretrained on PhysioNet 2019 and then
# adapted to them (session 11), the bigger model pretrained from scratch (session 12) and the
# bigger model pretrained on 2019 then adapted (session 13), each fine-tuned once (seed 1), their
# probabilities averaged (pre.model and pre-big.model: the 2019 pretrainings, in P12_ARCH and
# P12_ARCH_BIG, as bench/p12_eval.sh makes them):
#   OUT=cv POOL=0 bash bench/p12_model_cv.sh
#   OUT=cvbig SIZE=big POOL=0 bash bench/p12_model_cv.sh
#   OUT=cv19big SIZE=big PRETRAIN=pre-big.model POOL=0 bash bench/p12_model_cv.sh
#   OUT=cv19 PRETRAIN=pre.model JOIN="cv cvbig cv19big" bash bench/p12_model_cv.sh
# Two lanes of one thread each (THREADS=1 bash ... 1 3 & THREADS=1 bash ... 2 4) got more done
# than one two-thread process on a loaded 2-core machine.
# Prints each phase's wall time with the load average (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."
export CLINFM_DATA=${CLINFM_DATA:-../shared/data}
C=${C:-$PWD/build/clinfm}
THREADS=${THREADS:-2}
PREDICTORS=${PREDICTORS:-finetuned,finetuned_e2e}
POOL=${POOL:-1}
PRETRAIN=${PRETRAIN:-none}
SEEDS=${SEEDS:-1}
JOIN=${JOIN:-}
SPLIT_KEY=${SPLIT_KEY:-bench/p12.split-key}
: "${STORE:?set STORE}" "${BASE:?set BASE}" "${OUT:?set OUT}"
TASK=tasks/physionet2012_in_hospital_death.task
FOLDS=("$@")
[ ${#FOLDS[@]} -gt 0 ] || FOLDS=(0 1 2 3 4)

# The recipe (STEPS, FT_* above override its settings).
. bench/p12_recipe.sh
case ${SIZE:-small} in
  small) ARCH=$P12_ARCH ;;
  big) ARCH=$P12_ARCH_BIG ;;
  *) echo "p12_model_cv.sh: SIZE is small or big, not $SIZE" >&2; exit 2 ;;
esac
TRAIN=$P12_TRAIN
[ "$PRETRAIN" = none ] || TRAIN="$TRAIN --init $PRETRAIN"
FT="$P12_FT $P12_AUX"

# The pool needs every fold's baseline run: a missing one fails here, not after hours of training.
if [ "$POOL" = 1 ]; then
  for j in "${FOLDS[@]}"; do
    [ -f "$BASE/f$j/predictions.csv" ] ||
      { echo "p12_model_cv.sh: no baseline run $BASE/f$j (clinfm eval --fold $j/5 ...; or POOL=0 and pool later)" >&2; exit 1; }
    for d in $JOIN; do
      [ -f "$d/f$j/predictions.csv" ] ||
        { echo "p12_model_cv.sh: no run $d/f$j of the member JOIN names (run it first; or POOL=0 and pool later)" >&2; exit 1; }
    done
  done
fi

mkdir -p "$OUT"
T0=$(date +%s)
phase() { echo "== $1 ($(($(date +%s) - T0)) s so far, $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"; }
for j in "${FOLDS[@]}"; do
  SPLIT="--split-key $SPLIT_KEY --split 70/10/20 --fold $j/5"
  trained=0
  if grep -q "^wrote" "$OUT/f$j.train.log" 2>/dev/null && [ -d "$OUT/f$j.model" ]; then
    phase "fold $j: trained already ($OUT/f$j.model; delete it to retrain)"
  else
    phase "fold $j: train"
    "$C" train --store "$STORE" --out "$OUT/f$j.model" $SPLIT $ARCH $TRAIN --threads "$THREADS" > "$OUT/f$j.train.log"
    trained=1
  fi
  grep -E "^held_out|^early stop|^wrote" "$OUT/f$j.train.log"
  for s in $SEEDS; do
    E=$OUT/f$j; P=$PREDICTORS
    [ "$s" = 1 ] || { E=$OUT/f$j.s$s; P=finetuned_e2e; }
    # eval prints "wrote" after its last file, so a run killed half-way is redone; so is one of
    # the model this run has just replaced.
    if [ $trained = 0 ] && [ -f "$E/predictions.csv" ] && grep -q "^wrote" "$E.eval.log" 2>/dev/null; then
      phase "fold $j seed $s: evaluated already ($E; delete it to rerun)"; continue
    fi
    phase "fold $j seed $s: evaluate"
    "$C" eval --task $TASK --store "$STORE" --model "$OUT/f$j.model" --out "$E" $SPLIT --baselines none \
      --model-predictors "$P" $FT --seed "$s" --threads "$THREADS" --bootstrap 200 > "$E.eval.log" 2>&1
    grep -E "fine-tune" "$E.eval.log" || true
  done
done

[ "$POOL" = 1 ] || { phase "done (no pool)"; exit 0; }
phase "pool"
RUNS=()
for j in 0 1 2 3 4; do
  [ -f "$OUT/f$j/predictions.csv" ] || continue
  RUNS+=("$BASE/f$j" "$OUT/f$j")
  for s in $SEEDS; do [ "$s" = 1 ] || RUNS+=("$OUT/f$j.s$s"); done
  for d in $JOIN; do RUNS+=("$d/f$j"); done
done
AVG=()
[ "$SEEDS" = 1 ] || AVG=(--average finetuned_e2e --average record_position) # the floor's fit follows --seed too
[ -z "$JOIN" ] || AVG=(--average finetuned_e2e --average finetuned --average record_position)
"$C" pool "${RUNS[@]}" --out "$OUT/pool" --reference xgboost_values --reference xgboost --reference score_SAPS-I \
  --reference score_SOFA --stack finetuned_e2e+xgboost_values "${AVG[@]}"
phase "done"
