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
#   PRETRAIN   a PhysioNet 2019 folder to pretrain on (default $CLINFM_DATA/physionet-2019-sepsis-b),
#              once (no patient of the task is in it); its codes are shared with the 2012 map
#              (mappings/physionet-2012-parameters.csv), so its token embeddings carry over (30 of
#              set A's 53 codes are in it); pretraining and adaptation as bench/p12_recipe.sh's
#              P12_PRE19 and P12_TRAIN. "none": no 2019 members (MEMBERS "scratch big")
#   MEMBERS    the models of the recipe's ensemble (default "scratch pre big pre-big"; "scratch big"
#              when PRETRAIN=none): "scratch" is pretrained from scratch on the task's training
#              rows, "pre" is the 2019 model adapted to them, "big" is pretrained from scratch as
#              "scratch" is, in the recipe's bigger architecture (P12_ARCH_BIG), and "pre-big" is
#              "pre" in that architecture (its own 2019 pretraining); each is fine-tuned (ENSEMBLE
#              seeds) and finetuned_e2e is the mean of every member's probabilities (clinfm pool
#              --average). "scratch pre" was chosen on tuning rows in session 11, "big" added in
#              session 12 and "pre-big" in session 13 (docs/P12.md); "scratch" alone is the recipe
#              of sessions 5-10
#   C          the clinfm binary (default: build/clinfm of this checkout, built first)
#   SPLIT_KEY  the folds' key (default bench/p12.split-key: the benchmark's folds, fixed and
#              published since session 10 so every machine and session cuts the same folds; a
#              hospital's own evaluations keep their split key secret, docs/TIMELINE.md)
#   THREADS    threads (default 2)
#   FOLDS      folds (default 5; divides 100)
#   ENSEMBLE   fine-tuning seeds per member, averaged inside eval (--ft-ensemble; default 1:
#              two seeds added 0.001 in session 8, two pretrainings 0.016 in session 11)
#   QUICK=1    tiny settings, to check the pipeline in minutes (figures meaningless)
#   MODEL_ARGS, FT_ARGS, PRE_ARGS, ADAPT_ARGS  extra options for the model (train), fine-tuning
#              (eval --ft-*), pretraining and adaptation (train); STEPS and FT_* as in
#              bench/p12_recipe.sh, the recipe both this and bench/p12_model_cv.sh run
# Prints the table (also $OUT/pool/pool.md, pool.json) and the time of each phase with the load
# average, since the machine may be shared. A run stopped halfway (the set-B run takes about two
# hours of one core) is continued by running the same command with the same OUT: stores, 2019
# models, members whose training finished and evaluations whose files are all written are reused
# (the phase line says "reused"), the rest is redone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLINFM_DATA=${CLINFM_DATA:-../shared/data}
TRAIN_DIR=${1:-$CLINFM_DATA/physionet-2012}
EVAL_DIR=${2:-}
OUT=${OUT:-out/p12_eval}
PRETRAIN=${PRETRAIN:-$CLINFM_DATA/physionet-2019-sepsis-b}
THREADS=${THREADS:-2}
FOLDS=${FOLDS:-5}
ENSEMBLE=${ENSEMBLE:-1}
if [ "$PRETRAIN" = none ]; then MEMBERS=${MEMBERS:-scratch big}; else MEMBERS=${MEMBERS:-scratch pre big pre-big}; fi
for m in $MEMBERS; do
  case $m in
    scratch|big) ;;
    pre|pre-big) [ "$PRETRAIN" != none ] || { echo "p12_eval.sh: MEMBERS names $m but PRETRAIN=none" >&2; exit 2; }
         [ -d "$PRETRAIN" ] || { echo "p12_eval.sh: no PhysioNet 2019 folder $PRETRAIN (PRETRAIN=DIR, or PRETRAIN=none for the members without it)" >&2; exit 2; } ;;
    *) echo "p12_eval.sh: MEMBERS holds scratch, pre, big and/or pre-big, not $m" >&2; exit 2 ;;
  esac
done
SPLIT_KEY=${SPLIT_KEY:-bench/p12.split-key}
TASK=tasks/physionet2012_in_hospital_death.task
. bench/lib.sh

# The model recipe, shared with bench/p12_model_cv.sh (docs/P12.md says how each setting was
# chosen on tuning rows). PRE trains the scratch member on the task's rows; PRE19 pretrains on
# 2019 (PRETRAIN); ADAPT continues the 2019 model on the task's rows with PRE's settings (the pre
# member, session 10).
. bench/p12_recipe.sh
ARCH=$P12_ARCH
ARCH_BIG=$P12_ARCH_BIG
PRE=$P12_TRAIN
PRE19=$P12_PRE19
ADAPT=$P12_TRAIN
FT="$P12_FT $P12_AUX --ft-ensemble $ENSEMBLE"
if [ "${QUICK:-0}" = 1 ]; then
  ARCH="--values embed --inputs --value-loss 1 --layers 1 --d-model 32 --heads 2 --context 256 --dropout 0.1"
  ARCH_BIG="--values embed --inputs --value-loss 1 --layers 2 --d-model 48 --heads 2 --context 256 --dropout 0.1"
  PRE="--batch 4 --steps 40 --eval-every 20 --lr 1e-3"
  PRE19=$PRE
  ADAPT="--batch 4 --steps 20 --eval-every 10 --lr 1e-3"
  FT="--ft-epochs 2 --ft-lr 1e-3 --ft-ensemble 1 --ft-pool $FT_POOL $P12_AUX"
fi
ARCH="$ARCH ${MODEL_ARGS:-}"
ARCH_BIG="$ARCH_BIG ${MODEL_ARGS:-}"
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

# Pretraining on another hospital system's ICU stays (once per architecture: no patient of the
# task is in it): pre.model for the pre member, pre-big.model for pre-big.
pretrain19() {
  local name=$1 arch=$ARCH
  [ "$name" = pre ] || arch=$ARCH_BIG
  phase "pretrain $name on $PRETRAIN"
  store_of "$PRETRAIN" pre mappings/physionet-2019.map
  if [ ! -d "$OUT/$name.model" ]; then
    "$C" train --store "$OUT/pre.store" --out "$OUT/$name.model" --split-key "$OUT/split.key" --split 95/5/0 \
      $arch $PRE19 --threads "$THREADS" > "$OUT/$name.train.log"
  fi
  tail -1 "$OUT/$name.train.log"
}
for m in pre pre-big; do [[ " $MEMBERS " != *" $m "* ]] || pretrain19 $m; done

BASELINES="logreg,xgboost,logreg_values,xgboost_values"
SCORES="--score SAPS-I=P12//SAPS-I --score SOFA=P12//SOFA"
PREDICTORS="zero_shot,readout,finetuned,finetuned_e2e"
# One member on one split: NAME (the model and evaluation's name in $OUT), the member, the split,
# and the eval options that differ between the two forms. The first member runs every baseline,
# score and predictor; the others only the fine-tuned predictors the pool averages.
run_member() {
  local name=$1 member=$2 split=$3 what=$4 first=$5
  shift 5
  local train="$PRE" arch="$ARCH" model="$OUT/$name.model" ev="$OUT/$name" preds="finetuned,finetuned_e2e" more="--baselines none"
  # every member but scratch is named after itself; pre and pre-big start from their 2019 model
  [ "$member" = scratch ] || { model="$OUT/$name.$member.model"; ev="$OUT/$name.$member"; }
  case $member in big|pre-big) arch="$ARCH_BIG" ;; esac
  case $member in pre|pre-big) train="$ADAPT --init $OUT/$member.model" ;; esac
  [ "$first" = 0 ] || { preds=$PREDICTORS; more="--baselines $BASELINES $SCORES"; }
  RUNS+=("$ev")
  # A run stopped halfway continues: a member whose training finished is kept, and so is its
  # evaluation once every file of it is written (bench/lib.sh); a member trained anew is
  # evaluated anew.
  if bench_trained "$model" "$ev.train.log"; then
    phase "$what: the $member member is trained (reused)"
    ! bench_evaluated "$ev" || { phase "$what: the $member member is evaluated (reused)"; return 0; }
  else
    phase "$what: train the $member member"
    rm -rf "$model" "$ev"
    "$C" train --store "$OUT/train.store" --out "$model" $split $arch $train --threads "$THREADS" > "$ev.train.log"
  fi
  phase "$what: evaluate the $member member"
  "$C" eval --task $TASK --store "$OUT/train.store" "$@" --model "$model" --out "$ev" $split $more \
    --model-predictors $preds $FT --threads "$THREADS" --bootstrap 200 --quiet 2> "$ev.eval.log"
}
RUNS=()
if [ -z "$EVAL_DIR" ]; then
  for ((j = 0; j < FOLDS; j++)); do
    first=1
    for m in $MEMBERS; do
      run_member "fold$j" "$m" "--split-key $OUT/split.key --split 70/10/20 --fold $j/$FOLDS" "fold $j of $FOLDS" $first
      first=0
    done
  done
else
  first=1
  for m in $MEMBERS; do
    run_member external "$m" "--split-key $OUT/split.key --split 90/10/0" "all of $TRAIN_DIR, evaluated on $EVAL_DIR" \
      $first --eval-store "$OUT/eval.store"
    first=0
  done
fi

AVG=()
[ "$(echo $MEMBERS | wc -w)" = 1 ] || AVG=(--average finetuned_e2e --average finetuned)
phase "pool"
"$C" pool "${RUNS[@]}" --out "$OUT/pool" --reference xgboost_values --reference xgboost \
  --reference score_SAPS-I --reference score_SOFA --stack finetuned_e2e+xgboost_values \
  --stack finetuned_e2e+score_SAPS-I+score_SOFA "${AVG[@]}"
grep -h "reached the token limit" "$OUT"/*.eval.log 2>/dev/null | sed 's/^/zero-shot: /' || true
phase "done"
