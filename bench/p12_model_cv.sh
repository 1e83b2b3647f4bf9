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
#     SPLIT_KEY  the split key the baseline runs used (same folds)
#     BASE       a folder of baseline evaluations f0..f4 (clinfm eval --fold J/5, e.g. --baselines
#                logreg,xgboost,logreg_values,xgboost_values --score SAPS-I=P12//SAPS-I ...)
#     OUT        work folder: fJ.model, fJ (evaluation), fJ.train.log, fJ.eval.log, pool/
#     FOLD...    the folds to run (default 0 1 2 3 4); the pool takes every OUT/fJ present
#   C (default build/clinfm), THREADS (2), STEPS (1000), FT_EPOCHS (6)
# Prints each phase's wall time with the load average (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."
export CLINFM_DATA=${CLINFM_DATA:-../shared/data}
C=${C:-$PWD/build/clinfm}
THREADS=${THREADS:-2}
STEPS=${STEPS:-1000}
FT_EPOCHS=${FT_EPOCHS:-6}
: "${STORE:?set STORE}" "${SPLIT_KEY:?set SPLIT_KEY}" "${BASE:?set BASE}" "${OUT:?set OUT}"
TASK=tasks/physionet2012_in_hospital_death.task
FOLDS=("$@")
[ ${#FOLDS[@]} -gt 0 ] || FOLDS=(0 1 2 3 4)

# The recipe, chosen on fold 0's tuning rows (docs/P12.md).
ARCH="--values embed --inputs --value-loss 1 --layers 2 --d-model 64 --heads 2 --context 512 --dropout 0.1"
TRAIN="--batch 8 --steps $STEPS --eval-every 100 --eval-batches 16 --lr 1e-3 --early-stop 3"
FT="--ft-epochs $FT_EPOCHS --ft-lr 1e-3 --ft-patience 3"

mkdir -p "$OUT"
T0=$(date +%s)
phase() { echo "== $1 ($(($(date +%s) - T0)) s so far, $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"; }
for j in "${FOLDS[@]}"; do
  SPLIT="--split-key $SPLIT_KEY --split 70/10/20 --fold $j/5"
  phase "fold $j: train"
  "$C" train --store "$STORE" --out "$OUT/f$j.model" $SPLIT $ARCH $TRAIN --threads "$THREADS" > "$OUT/f$j.train.log"
  grep -E "^held_out|^early stop|^wrote" "$OUT/f$j.train.log"
  phase "fold $j: evaluate"
  "$C" eval --task $TASK --store "$STORE" --model "$OUT/f$j.model" --out "$OUT/f$j" $SPLIT --baselines none \
    --model-predictors finetuned_e2e $FT --threads "$THREADS" --bootstrap 200 > "$OUT/f$j.eval.log" 2>&1
  grep -E "fine-tune" "$OUT/f$j.eval.log" || true
done

phase "pool"
RUNS=()
for j in 0 1 2 3 4; do
  [ -f "$OUT/f$j/predictions.csv" ] && RUNS+=("$BASE/f$j" "$OUT/f$j")
done
"$C" pool "${RUNS[@]}" --out "$OUT/pool" --reference xgboost_values --reference xgboost --reference score_SAPS-I \
  --reference score_SOFA --stack finetuned_e2e+xgboost_values
phase "done"
