#!/usr/bin/env bash
# Zero-shot sampling throughput: generated tokens/s of batched sampling with the KV cache in
# clinfm (gpt_sample, the engine of the zero-shot rollouts) against the same network sampled the
# same way in PyTorch, in the same run.
#
# Builds bench/sample_bench.c (the model sources only), exports the network's weights (a clinfm
# checkpoint given with MODEL=..., else the configuration with seeded random weights) and the
# benchmark prompt's next-token probabilities, then alternates ROUNDS runs of each side; the
# PyTorch side first checks that it computes the same probabilities. Prints the best and median
# tokens/s of each side and their ratio.
#
#   bash bench/sample_bench.sh                         # ROUNDS=3 THREADS=2, 20 rollouts x 128 tokens
#   MODEL=mimic.model bash bench/sample_bench.sh --prompt 64 --new 64
# Extra arguments go to the C driver (--layers --d-model --heads --context --vocab --rollouts
# --prompt --new --reps); --rollouts, --new and --reps are passed to PyTorch too. Needs Debian's
# python3-torch (apt-get install -y python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
OUT=${BUILD:-build-bench}
. bench/lib.sh

bench_build_model sample_bench
bench_need_torch sample_bench

torch_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --rollouts|--new|--reps) torch_args+=("${args[$i]}" "${args[$((i + 1))]}") ;;
  esac
done
model_args=()
# a model bundle's checkpoint (an old-layout model is the checkpoint file itself)
[ -n "${MODEL:-}" ] && model_args=(--model "$([ -d "$MODEL" ] && echo "$MODEL/checkpoint.bin" || echo "$MODEL")")

bench_machine
echo "model: ${MODEL:-random weights} $* (defaults: 4 layers, d_model 256, 4 heads, context 256, vocab 4096;" \
     "20 rollouts x 128 new tokens after a 128-token prompt), $THREADS threads, $ROUNDS rounds"

log=$(mktemp)
weights=$(mktemp)
trap 'rm -f "$log" "$weights"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=$THREADS nice "$OUT/sample_bench" "${model_args[@]}" --export "$weights" "$@" | tee -a "$log"
  nice /usr/bin/python3 bench/sample_bench_torch.py "$weights" --threads "$THREADS" "${torch_args[@]}" | tee -a "$log"
done

bench_summary sample_bench "generated tokens/s" 0 "$log"
