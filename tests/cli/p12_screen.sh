#!/usr/bin/env bash
# bench/p12_screen.sh runs minutes a fine-tuning, so what it reuses, refuses and computes is
# checked with a stand-in for clinfm that records each call and writes the one field the script
# reads back (the kept tuning log loss in metrics.json), made from the fold, the seed and whether
# the candidate's option was given. Checked: every (fold, seed) runs the recipe and the candidate
# once, with the seed and the candidate's options; the table's losses, each fold's mean
# difference and its standard error, and the pooled line are the stand-in's numbers worked by
# hand; a rerun with the same OUT calls nothing; the same NAME with other options is refused; a
# run that fails stops the screen with its log named and leaves no metrics.json behind.
set -euo pipefail
cd "${CLINFM_ROOT:-$(dirname "$0")/../..}"
T=$(mktemp -d "${CLINFM_TEST_TMP:-/tmp}/p12screen.XXXXXX")
trap 'rm -rf "$T"' EXIT

# kept loss = 0.3 + fold/100 + seed/1000, plus 0.002 x seed with --cand (so the candidate's
# differences are 0.002 x seed: 0.002, 0.004 at seeds 1, 2)
cat > "$T/clinfm" <<'EOF'
#!/usr/bin/env bash
[ "$1" = eval ] || exit 2
shift
out=; fold=; seed=; cand=0
while [ $# -gt 0 ]; do
  case $1 in --out) out=$2; shift ;; --fold) fold=${2%/*}; shift ;; --seed) seed=$2; shift ;; --cand) cand=1 ;; esac
  shift
done
echo "eval f$fold s$seed c$cand" >> "$CALLS"
[ -z "${FAIL_ON:-}" ] || [ "$FAIL_ON" != "f$fold s$seed c$cand" ] || { echo "stand-in failure"; exit 1; }
mkdir -p "$out"
loss=$(awk -v f="$fold" -v s="$seed" -v c="$cand" 'BEGIN { printf "%.6f", 0.3 + f / 100 + s / 1000 + c * 0.002 * s }')
printf '{"predictors": [{"name": "finetuned_e2e", "settings": {"runs": [{"tuning_log_loss": %s}]}}]}\n' "$loss" > "$out/metrics.json"
EOF
chmod +x "$T/clinfm"
mkdir -p "$T/models/f1.model" "$T/models/f3.model"
export CALLS=$T/calls
run() { : > "$CALLS"; CLINFM=$T/clinfm STORE=$T/store SPLIT_KEY=$T/key MODELS=$T/models OUT=$T/scr FOLDS="1 3" SEEDS="1 2" \
  "$@" > "$T/out" 2> "$T/err"; }
calls() { LC_ALL=C sort "$CALLS" | tr '\n' ','; }
fail() { echo "FAIL: $1 (calls: $(calls))"; cat "$T/out" "$T/err"; exit 1; }

run bash bench/p12_screen.sh CAND --cand || fail "the first screen failed"
[ "$(calls)" = "eval f1 s1 c0,eval f1 s1 c1,eval f1 s2 c0,eval f1 s2 c1,eval f3 s1 c0,eval f3 s1 c1,eval f3 s2 c0,eval f3 s2 c1," ] ||
  fail "not one recipe and one candidate run per fold and seed"
grep -qx "fold 1: recipe 0.3110 0.3120 | CAND 0.3130 0.3160" "$T/out" || fail "fold 1's losses"
grep -qx "fold 3: recipe 0.3310 0.3320 | CAND 0.3330 0.3360" "$T/out" || fail "fold 3's losses"
# differences 0.002 and 0.004: mean 0.003, standard error sqrt(0.000002 / 1 / 2) = 0.0010
grep -qx "  fold 1: mean difference +0.0030 (standard error 0.0010, 2 pairs)" "$T/out" || fail "fold 1's difference"
# all four: 0.002, 0.004, 0.002, 0.004: mean 0.003, sd sqrt(0.000004 / 3), se that / 2 = 0.0006
grep -qx "all folds: mean difference +0.0030 (standard error 0.0006, 4 pairs)" "$T/out" || fail "the pooled line"
[ ! -d "$T/scr/CAND/f1.s1.model" ] || fail "a model copy was left behind"

run bash bench/p12_screen.sh CAND --cand || fail "the rerun failed"
[ ! -s "$CALLS" ] || fail "a rerun with the same OUT ran something again"
grep -q "all folds: mean difference +0.0030" "$T/out" || fail "the rerun's table"

if run bash bench/p12_screen.sh CAND --cand --other; then fail "CAND with other options ran"; fi
grep -q "screened with other options" "$T/err" || fail "the refusal does not say why"
[ ! -s "$CALLS" ] || fail "something ran before the refusal"

if run env FAIL_ON="f3 s2 c1" bash bench/p12_screen.sh CAND2 --cand; then fail "a failed run did not stop the screen"; fi
grep -q "the run in $T/scr/CAND2/f3.s2 failed; its log is $T/scr/CAND2/f3.s2.log" "$T/err" || fail "the failure is not named"
[ ! -e "$T/scr/CAND2/f3.s2/metrics.json" ] || fail "a failed run left metrics.json"
echo "p12_screen: ok"
