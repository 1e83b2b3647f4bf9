# The model recipe of issue 13 on PhysioNet 2012, in one place: sourced by bench/p12_model_cv.sh
# (the cross-validation of docs/P12.md) and bench/p12_eval.sh (the whole benchmark, and set B),
# so the benchmark runs what was chosen. docs/P12.md says how each setting was chosen on tuning
# rows (architecture and pretraining: session 5; fine-tuning: sessions 5-6; pooling: session 8).
# Each fine-tuning setting can be overridden from the environment for an experiment
# (FT_PROBE_CV=0: the probe penalty chosen on the tuning rows, sessions 5-10).
STEPS=${STEPS:-3000}
FT_EPOCHS=${FT_EPOCHS:-6}
FT_LR=${FT_LR:-1e-3}
FT_PATIENCE=${FT_PATIENCE:-6}
FT_CONTEXT=${FT_CONTEXT:-0}
FT_POOL=${FT_POOL:-extremes}
FT_EXTRA=${FT_EXTRA:-}
# A 2-layer, d_model-64 GPT with values and times as continuous inputs and a value forecast head.
P12_ARCH="--values embed --inputs --value-loss 1 --layers 2 --d-model 64 --heads 2 --context 512 --dropout 0.1"
# The recipe's third member since session 12 (bench/p12_eval.sh's MEMBERS "big", bench/p12_model_cv.sh's
# SIZE=big; docs/P12.md): the same inputs in a 3-layer, d_model-128 GPT (697,824 parameters against
# 151,648), pretrained from scratch on the task's rows with P12_TRAIN and fine-tuned with P12_FT.
# Its fourth since session 13 ("pre-big"): the same architecture pretrained on PhysioNet 2019 with
# P12_PRE19 (its own pretraining), then adapted and fine-tuned as the small 2019 member is.
P12_ARCH_BIG="--values embed --inputs --value-loss 1 --layers 3 --d-model 128 --heads 4 --context 512 --dropout 0.1"
# Pretraining from scratch on the training rows, early stopping on the tuning rows' loss.
P12_TRAIN="--batch 8 --steps $STEPS --eval-every 100 --eval-batches 16 --lr 1e-3 --early-stop 3"
# Pretraining on PhysioNet 2019 (the recipe's second member since session 11: bench/p12_eval.sh's
# MEMBERS, bench/p12_model_cv.sh's PRETRAIN and JOIN; docs/P12.md): up to 6,000 steps on the 2019
# store's train rows (95/5 split, early stopping on its 5%), once for every fold, since no set A
# patient is in it; the member's fold model then starts from it (train --init) with P12_TRAIN.
# Each member is fine-tuned with P12_FT and the two members' probabilities are averaged.
P12_PRE19="--batch 8 --steps ${PRE19_STEPS:-6000} --eval-every 100 --eval-batches 16 --lr 1e-3 --early-stop 3"
# End-to-end fine-tuning: the epoch (the linear probe's start counts as 0) kept by tuning log loss;
# the probe's penalty chosen by 5-fold cross-validation on the train rows (session 11), so the
# tuning rows judge the probe and the fine-tuned epochs alike.
FT_PROBE_CV=${FT_PROBE_CV:-5}
P12_FT="--ft-epochs $FT_EPOCHS --ft-lr $FT_LR --ft-patience $FT_PATIENCE --ft-dropout 0.2 --ft-weight-decay 0.1 --ft-lm-weight 1.0 --ft-pool $FT_POOL --ft-probe-cv $FT_PROBE_CV $FT_EXTRA"
[ "$FT_CONTEXT" = 0 ] || P12_FT="$P12_FT --ft-context $FT_CONTEXT"
# PhysioNet 2012's auxiliary tasks (session 11, docs/P12.md): heads for death within 30 days and a
# stay of 10 days or more train beside the main one at weight FT_AUX_WEIGHT; only the main head's
# tuning loss chooses the epoch and only it predicts. The files label set A's own prompts, so
# bench/p12_eval.sh and bench/p12_model_cv.sh add them and bench/fm_tasks.sh does not.
# FT_AUX_WEIGHT=0: none.
FT_AUX_WEIGHT=${FT_AUX_WEIGHT:-0.5}
P12_AUX=""
[ "$FT_AUX_WEIGHT" = 0 ] || P12_AUX="--ft-aux-task tasks/aux/physionet2012_death_30d.task --ft-aux-task tasks/aux/physionet2012_long_stay.task --ft-aux-weight $FT_AUX_WEIGHT"
