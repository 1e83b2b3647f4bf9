#!/usr/bin/env bash
# bench/p12_model_cv.sh runs for hours a fold, so what it skips and what it refuses matters more
# than its figures: driven here by a stand-in for clinfm that only records each call and writes
# what the script reads back (the train log's and eval log's "wrote" line, predictions.csv).
# Checked: a pool whose baseline runs are missing is refused before anything trains; a fold
# trained and evaluated is neither retrained nor re-evaluated (seed 1 as much as seed 2), so the
# same command with POOL=1 only pools once side-by-side lanes are done; an evaluation killed
# half-way (no "wrote" in its log) is redone; a retrained fold's evaluations are redone; another
# member of the ensemble (JOIN) is refused when its runs are missing and otherwise pooled with
# its fine-tuned predictors averaged; SIZE=big trains the recipe's bigger member and another SIZE is
# refused before anything runs.
set -euo pipefail
cd "${CLINFM_ROOT:-$(dirname "$0")/../..}"
T=$(mktemp -d "${CLINFM_TEST_TMP:-/tmp}/p12cv.XXXXXX")
trap 'rm -rf "$T"' EXIT

# The stand-in: "train 1", "eval 1 s2", "pool" into $T/calls, one line a call.
cat > "$T/clinfm" <<'EOF'
#!/usr/bin/env bash
cmd=$1; shift
[ "$cmd" != pool ] || { [ -z "${POOLARGS:-}" ] || echo "$*" > "$POOLARGS"; }
[ "$cmd" != train ] || { [ -z "${TRAINARGS:-}" ] || echo "$*" >> "$TRAINARGS"; }
out=; fold=; seed=1
while [ $# -gt 0 ]; do
  case $1 in --out) out=$2; shift ;; --fold) fold=${2%/*}; shift ;; --seed) seed=$2; shift ;; esac
  shift
done
mkdir -p "$out"
case $cmd in
  train) echo "train $fold" >> "$CALLS"; echo "held_out: 1 nats/token"; echo "wrote $out" ;;
  eval) echo "eval $fold s$seed" >> "$CALLS"; : > "$out/predictions.csv"; echo "wrote $out/{metrics.json,predictions.csv}" ;;
  pool) echo "pool" >> "$CALLS" ;;
esac
EOF
chmod +x "$T/clinfm"
export CALLS=$T/calls
run() { : > "$CALLS"; C=$T/clinfm STORE=$T/store SPLIT_KEY=$T/key BASE=$T/base OUT=$T/cv "$@" bash bench/p12_model_cv.sh 0 1 \
  > "$T/out" 2>&1; }
calls() { tr '\n' ',' < "$CALLS"; }
fail() { echo "FAIL: $1 (calls: $(calls))"; cat "$T/out"; exit 1; }

# No baseline runs: refused before any training, naming the missing one.
if run env POOL=1 SEEDS=1; then fail "a pool without baseline runs ran"; fi
grep -q "no baseline run $T/base/f0" "$T/out" || fail "the refusal does not name $T/base/f0"
[ ! -s "$CALLS" ] || fail "something ran before the refusal"
# POOL=0 needs none.
run env POOL=0 SEEDS=1 || fail "POOL=0 without baseline runs failed"
[ "$(calls)" = "train 0,eval 0 s1,train 1,eval 1 s1," ] || fail "first run"

mkdir -p "$T/base/f0" "$T/base/f1"
: > "$T/base/f0/predictions.csv"; : > "$T/base/f1/predictions.csv"
run env POOL=1 SEEDS=1 || fail "the pool-only rerun failed"
[ "$(calls)" = "pool," ] || fail "a rerun over trained and evaluated folds did more than pool"

# Fold 1's evaluation killed after predictions.csv: redone, fold 0's kept.
grep -v "^wrote" "$T/cv/f1.eval.log" > "$T/log" || true
mv "$T/log" "$T/cv/f1.eval.log"
run env POOL=1 SEEDS=1 || fail "rerun after a killed evaluation"
[ "$(calls)" = "eval 1 s1,pool," ] || fail "a killed evaluation was not redone alone"

# Seed 2 joins: only its evaluations run; then nothing but the pool.
run env POOL=1 SEEDS="1 2" || fail "seed 2"
[ "$(calls)" = "eval 0 s2,eval 1 s2,pool," ] || fail "adding seed 2"
run env POOL=1 SEEDS="1 2" || fail "seed 2 rerun"
[ "$(calls)" = "pool," ] || fail "a rerun with seed 2 did more than pool"

# Fold 0 retrained: both its evaluations are of the old model, so both are redone.
rm -rf "$T/cv/f0.model"
run env POOL=1 SEEDS="1 2" || fail "retraining fold 0"
[ "$(calls)" = "train 0,eval 0 s1,eval 0 s2,pool," ] || fail "a retrained fold's evaluations were kept"

# The other member of the ensemble: refused before anything runs while its runs are missing.
export POOLARGS=$T/poolargs
if run env POOL=1 JOIN=$T/cv19; then fail "a pool joining a missing member ran"; fi
grep -q "no run $T/cv19/f0 of the member JOIN names" "$T/out" || fail "the JOIN refusal does not name $T/cv19/f0"
[ ! -s "$CALLS" ] || fail "something ran before the JOIN refusal"
mkdir -p "$T/cv19/f0" "$T/cv19/f1"
: > "$T/cv19/f0/predictions.csv"; : > "$T/cv19/f1/predictions.csv"
run env POOL=1 JOIN=$T/cv19 || fail "JOIN"
[ "$(calls)" = "pool," ] || fail "JOIN did more than pool"
for want in "$T/base/f0 $T/cv/f0 $T/cv19/f0 $T/base/f1 $T/cv/f1 $T/cv19/f1 " \
  "--average finetuned_e2e --average finetuned --average record_position"; do
  grep -qF -- "$want" "$POOLARGS" || fail "the pool was not given: $want ($(cat "$POOLARGS"))"
done

# The bigger member: the recipe's P12_ARCH_BIG on every fold, the small one nowhere.
export TRAINARGS=$T/trainargs
. bench/p12_recipe.sh
run env POOL=0 SIZE=big OUT=$T/big || fail "SIZE=big"
[ "$(calls)" = "train 0,eval 0 s1,train 1,eval 1 s1," ] || fail "SIZE=big did not train and evaluate both folds"
[ "$(grep -cF -- "$P12_ARCH_BIG" "$TRAINARGS")" = 2 ] || fail "SIZE=big did not train P12_ARCH_BIG ($(cat "$TRAINARGS"))"
if grep -qF -- "$P12_ARCH " "$TRAINARGS"; then fail "SIZE=big trained the small architecture"; fi
if run env POOL=0 SIZE=huge OUT=$T/huge; then fail "SIZE=huge ran"; fi
grep -q "SIZE is small or big, not huge" "$T/out" || fail "the SIZE refusal does not say why"
[ ! -s "$CALLS" ] || fail "something ran before the SIZE refusal"
echo "p12_model_cv: ok"
