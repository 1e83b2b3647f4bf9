#!/usr/bin/env bash
# Training speed and peak memory of the clinfm GPT against the same model in PyTorch.
#
# Builds bench/gpt_bench.c (the model sources only, so a half-edited file elsewhere cannot stop
# it), then alternates ROUNDS runs of clinfm and of bench/gpt_bench_torch.py on the reference
# configuration (4 layers, d_model 256, 4 heads, context 256, batch 8, vocabulary 4096) with
# THREADS threads each, and prints the best and median tokens/s of each side, their peak RSS
# and the ratios. Alternating runs, and reporting the best as well as the median, is how this
# copes with a machine other people are using: both sides see the same noise.
#
#   bash bench/gpt_bench.sh                 # defaults: ROUNDS=3 STEPS=10 THREADS=2
#   ROUNDS=5 bash bench/gpt_bench.sh --dropout 0
# Extra arguments go to both trainers (--layers --d-model --heads --context --batch --vocab
# --dropout --steps). Needs Debian's python3-torch (apt-get install -y python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
OUT=${BUILD:-build-bench}
. bench/lib.sh

bench_build_model gpt_bench
bench_need_torch gpt_bench
bench_machine 1
echo "config: $* (defaults: 4 layers, d_model 256, 4 heads, context 256, batch 8, vocab 4096, dropout 0.1), $STEPS timed steps, $THREADS threads, $ROUNDS rounds"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=$THREADS nice "$OUT/gpt_bench" --steps "$STEPS" "$@" | tee -a "$log"
  nice /usr/bin/python3 bench/gpt_bench_torch.py --steps "$STEPS" --threads "$THREADS" "$@" | tee -a "$log"
done

bench_summary gpt_bench tokens/s 1 "$log"
