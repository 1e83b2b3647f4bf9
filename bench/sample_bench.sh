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
mkdir -p "$OUT"

cc -std=c11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -Isrc -pthread -fopenmp \
   -o "$OUT/sample_bench" bench/sample_bench.c src/model/gpt.c src/model/gpt_kernels.c \
   src/model/gpt_sample.c src/util/err.c src/util/atomic_file.c -lopenblas -lz -lm -lpthread

if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "sample_bench: PyTorch is missing; install Debian's python3-torch (apt-get install -y python3-torch)" >&2
  exit 1
fi

torch_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --rollouts|--new|--reps) torch_args+=("${args[$i]}" "${args[$((i + 1))]}") ;;
  esac
done
model_args=()
[ -n "${MODEL:-}" ] && model_args=(--model "$MODEL")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $(nproc) CPUs, $cpu, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: ${MODEL:-random weights} $* (defaults: 4 layers, d_model 256, 4 heads, context 256, vocab 4096;" \
     "20 rollouts x 128 new tokens after a 128-token prompt), $THREADS threads, $ROUNDS rounds"

log=$(mktemp)
weights=$(mktemp)
trap 'rm -f "$log" "$weights"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=$THREADS nice "$OUT/sample_bench" "${model_args[@]}" --export "$weights" "$@" | tee -a "$log"
  nice /usr/bin/python3 bench/sample_bench_torch.py "$weights" --threads "$THREADS" "${torch_args[@]}" | tee -a "$log"
done

awk '
  function field(name,   i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] + 0 }
    return 0
  }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $1 == "clinfm" || $1 == "torch" {
    s = $1; n[s]++; tps[s, n[s]] = field("tokens_per_s")
    if (tps[s, n[s]] > best[s]) best[s] = tps[s, n[s]]
  }
  END {
    if (!n["clinfm"] || !n["torch"]) { print "sample_bench: a side produced no result"; exit 1 }
    for (s in n) { for (i = 1; i <= n[s]; i++) v[i] = tps[s, i]; med[s] = median(v, n[s]) }
    printf "clinfm: best %.0f generated tokens/s, median %.0f\n", best["clinfm"], med["clinfm"]
    printf "torch:  best %.0f generated tokens/s, median %.0f\n", best["torch"], med["torch"]
    printf "ratio clinfm/torch: %.2fx best, %.2fx median\n", best["clinfm"] / best["torch"], med["clinfm"] / med["torch"]
  }' "$log"
