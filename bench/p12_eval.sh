#!/bin/bash
# PhysioNet/CinC 2012 in-hospital mortality: the foundation model against the baselines and the
# clinical scores, on patients it never saw. Ingests, de-identifies, (pre)trains, evaluates every
# predictor and both clinical scores on the same folds, and prints one table with 95% patient-
# bootstrap intervals, paired differences against XGBoost and the scores, and the compute used.
#
# Usage (from the repository root):
#   bash bench/p12_eval.sh [DIR]          5-fold cross-validation over the patients of DIR
#                                         (default $CLINFM_DATA/physionet-2012): every predictor
#                                         trained on four folds, tuned on part of them, evaluated
#                                         on the fifth; the folds are fixed by a split key kept in
#                                         $OUT and recorded in every evaluation
#   bash bench/p12_eval.sh TRAIN_DIR EVAL_DIR
#                                         train on all of TRAIN_DIR (90% train, 10% tuning) and
#                                         evaluate on every stay of EVAL_DIR (another set of the
#                                         challenge: set B)
# A folder is laid out like $CLINFM_DATA/physionet-2012: set-a/<RecordID>.txt and Outcomes-a.txt
# (any set-*/ and Outcomes-*.txt are read). Set B, laid out as set-a/ and Outcomes-a.txt in its own
# folder, is run as `bash bench/p12_eval.sh $CLINFM_DATA/physionet-2012 SETB_DIR`.
#
# Environment:
#   OUT        work folder (default out/p12_eval); stores, keys, models and evaluations go there
#   PRETRAIN   "none" (the default, the cross-validated recipe: the model is pretrained from
#              scratch on the task's training rows) or a PhysioNet 2019 folder to pretrain on first
#              (e.g. $CLINFM_DATA/physionet-2019-sepsis-b), then adapted to the task's training rows;
#              its codes are shared with the 2012 map (mappings/physionet-2012-parameters.csv), so its
#              token embeddings carry over (30 of set A's 53 codes are in it). Pretraining and
#              adaptation as bench/p12_recipe.sh's P12_PRE19 and P12_TRAIN; screened in session 10
#              (docs/P12.md), an option, not the default
#   C          the clinfm binary (default: build/clinfm of this checkout, built first)
#   SPLIT_KEY  the folds' key (default bench/p12.split-key: the benchmark's folds, fixed and
#              published since session 10 so every machine and session cuts the same folds; a
#              hospital's own evaluations keep their split key secret, docs/TIMELINE.md)
#   THREADS    threads (default 2)
#   FOLDS      folds (default 5; divides 100)
#   ENSEMBLE   fine-tuned models per fold, averaged (default 2: the recipe's two seeds)
#   QUICK=1    tiny settings, to check the pipeline in minutes (figures meaningless)
#   MODEL_ARGS, FT_ARGS, PRE_ARGS, ADAPT_ARGS  extra options for the model (train), fine-tuning
#              (eval --ft-*), pretraining and adaptation (train); STEPS and FT_* as in
#              bench/p12_recipe.sh, the recipe both this and bench/p12_model_cv.sh run
# Prints the table (also $OUT/pool/pool.md, pool.json) and the time of each phase with the load
# average, since the machine may be shared.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLINFM_DATA=${CLINFM_DATA:-../shared/data}
TRAIN_DIR=${1:-$CLINFM_DATA/physionet-2012}
EVAL_DIR=${2:-}
OUT=${OUT:-out/p12_eval}
PRETRAIN=${PRETRAIN:-none}
THREADS=${THREADS:-2}
FOLDS=${FOLDS:-5}
ENSEMBLE=${ENSEMBLE:-2}
SPLIT_KEY=${SPLIT_KEY:-bench/p12.split-key}
TASK=tasks/physionet2012_in_hospital_death.task
. bench/lib.sh

# The model recipe, shared with bench/p12_model_cv.sh (docs/P12.md says how each setting was
# chosen on tuning rows). PRE trains from scratch on the task's rows; PRE19 on 2019 (PRETRAIN);
# ADAPT continues a 2019 model on the task's rows with the same settings as PRE (session 10).
. bench/p12_recipe.sh
ARCH=$P12_ARCH
PRE=$P12_TRAIN
PRE19=$P12_PRE19
ADAPT=$P12_TRAIN
FT="$P12_FT --ft-ensemble $ENSEMBLE"
if [ "${QUICK:-0}" = 1 ]; then
  ARCH="--values embed --inputs --value-loss 1 --layers 1 --d-model 32 --heads 2 --context 256 --dropout 0.1"
  PRE="--batch 4 --steps 40 --eval-every 20 --lr 1e-3"
  PRE19=$PRE
  ADAPT="--batch 4 --steps 20 --eval-every 10 --lr 1e-3"
  FT="--ft-epochs 2 --ft-lr 1e-3 --ft-ensemble 1 --ft-pool $FT_POOL"
fi
ARCH="$ARCH ${MODEL_ARGS:-}"
PRE="$PRE ${PRE_ARGS:-}"
PRE19="$PRE19 ${PRE_ARGS:-}"
ADAPT="$ADAPT ${ADAPT_ARGS:-}"
FT="$FT ${FT_ARGS:-}"

# C: a clinfm binary to use (default: this checkout's, built first).
if [ -z "${C:-}" ]; then
  make -j"$THREADS" build/clinfm >/dev/null
  C=$PWD/build/clinfm
fi
mkdir -p "$OUT"
bench_machine
T0=$(date +%s)
phase() { echo "== $1 ($(($(date +%s) - T0)) s so far, load $(cut -d' ' -f1-3 /proc/loadavg))"; }

# Keys: a de-identification key and a split key, made once and kept apart from the data.
[ -f "$OUT/deid.key" ] || "$C" keygen --out "$OUT/deid.key" >/dev/null
[ -f "$OUT/split.key" ] || cp "$SPLIT_KEY" "$OUT/split.key"
chmod 600 "$OUT/split.key"

# Ingest and de-identify a folder into $OUT/$2.store (kept when it is already there).
store_of() {
  local dir=$1 name=$2 map=$3
  if [ ! -f "$OUT/$name.store" ]; then
    "$C" ingest --mapping "$map" --input "$dir" --out "$OUT/$name.raw.store" > "$OUT/$name.ingest.log"
    "$C" deid "$OUT/$name.raw.store" --out "$OUT/$name.store" --key "$OUT/deid.key" --split-key "$OUT/split.key" --quiet
    rm -f "$OUT/$name.raw.store"
  fi
}
phase "ingest and de-identify"
store_of "$TRAIN_DIR" train mappings/physionet-2012.map
[ -n "$EVAL_DIR" ] && store_of "$EVAL_DIR" eval mappings/physionet-2012.map

# Pretraining on another hospital system's ICU stays (once: no patient of the task is in it).
INIT=""
if [ "$PRETRAIN" != none ]; then
  phase "pretrain on $PRETRAIN"
  store_of "$PRETRAIN" pre mappings/physionet-2019.map
  if [ ! -d "$OUT/pre.model" ]; then
    "$C" train --store "$OUT/pre.store" --out "$OUT/pre.model" --split-key "$OUT/split.key" --split 95/5/0 \
      $ARCH $PRE19 --threads "$THREADS" > "$OUT/pre.train.log"
  fi
  tail -1 "$OUT/pre.train.log"
  INIT="--init $OUT/pre.model"
fi
# The task's own training: from scratch with the recipe, or the adaptation of the 2019 model.
TASK_TRAIN="$PRE"
[ -z "$INIT" ] || TASK_TRAIN="$ADAPT $INIT"

BASELINES="logreg,xgboost,logreg_values,xgboost_values"
SCORES="--score SAPS-I=P12//SAPS-I --score SOFA=P12//SOFA"
PREDICTORS="zero_shot,readout,finetuned,finetuned_e2e"
RUNS=()
if [ -z "$EVAL_DIR" ]; then
  for ((j = 0; j < FOLDS; j++)); do
    SPLIT="--split-key $OUT/split.key --split 70/10/20 --fold $j/$FOLDS"
    phase "fold $j of $FOLDS: adapt the model"
    "$C" train --store "$OUT/train.store" --out "$OUT/fold$j.model" $SPLIT $ARCH $TASK_TRAIN \
      --threads "$THREADS" > "$OUT/fold$j.train.log"
    phase "fold $j of $FOLDS: evaluate"
    "$C" eval --task $TASK --store "$OUT/train.store" --model "$OUT/fold$j.model" --out "$OUT/fold$j" $SPLIT \
      --baselines $BASELINES $SCORES --model-predictors $PREDICTORS $FT --threads "$THREADS" --bootstrap 200 \
      --quiet 2> "$OUT/fold$j.eval.log"
    RUNS+=("$OUT/fold$j")
  done
else
  SPLIT="--split-key $OUT/split.key --split 90/10/0"
  phase "train on all of $TRAIN_DIR"
  "$C" train --store "$OUT/train.store" --out "$OUT/all.model" $SPLIT $ARCH $TASK_TRAIN \
    --threads "$THREADS" > "$OUT/all.train.log"
  phase "evaluate on $EVAL_DIR"
  "$C" eval --task $TASK --store "$OUT/train.store" --eval-store "$OUT/eval.store" --model "$OUT/all.model" \
    --out "$OUT/external" $SPLIT --baselines $BASELINES $SCORES --model-predictors $PREDICTORS $FT \
    --threads "$THREADS" --bootstrap 200 --quiet 2> "$OUT/external.eval.log"
  RUNS+=("$OUT/external")
fi

phase "pool"
"$C" pool "${RUNS[@]}" --out "$OUT/pool" --reference xgboost_values --reference xgboost \
  --reference score_SAPS-I --reference score_SOFA --stack finetuned_e2e+xgboost_values \
  --stack finetuned_e2e+score_SAPS-I+score_SOFA
grep -h "reached the token limit" "$OUT"/*.eval.log 2>/dev/null | sed 's/^/zero-shot: /' || true
phase "done"
