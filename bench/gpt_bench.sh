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
mkdir -p "$OUT"

cc -std=c11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -Isrc -pthread -fopenmp \
   -o "$OUT/gpt_bench" bench/gpt_bench.c src/model/gpt.c src/model/gpt_kernels.c \
   src/model/gpt_sample.c src/util/err.c src/util/atomic_file.c -lopenblas -lz -lm -lpthread

if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "gpt_bench: PyTorch is missing; install Debian's python3-torch (apt-get install -y python3-torch)" >&2
  exit 1
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
simd=$(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo none)
echo "machine: $(nproc) CPUs, $cpu, widest SIMD $simd, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "config: $* (defaults: 4 layers, d_model 256, 4 heads, context 256, batch 8, vocab 4096, dropout 0.1), $STEPS timed steps, $THREADS threads, $ROUNDS rounds"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=$THREADS nice "$OUT/gpt_bench" --steps "$STEPS" "$@" | tee -a "$log"
  nice /usr/bin/python3 bench/gpt_bench_torch.py --steps "$STEPS" --threads "$THREADS" "$@" | tee -a "$log"
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
    if (field("peak_rss_mb") > rss[s]) rss[s] = field("peak_rss_mb")
  }
  END {
    if (!n["clinfm"] || !n["torch"]) { print "gpt_bench: a side produced no result"; exit 1 }
    for (s in n) { for (i = 1; i <= n[s]; i++) v[i] = tps[s, i]; med[s] = median(v, n[s]) }
    printf "clinfm: best %.0f tokens/s, median %.0f, peak RSS %.0f MB\n", best["clinfm"], med["clinfm"], rss["clinfm"]
    printf "torch:  best %.0f tokens/s, median %.0f, peak RSS %.0f MB\n", best["torch"], med["torch"], rss["torch"]
    printf "ratio clinfm/torch: %.2fx best, %.2fx median; memory %.2fx\n", best["clinfm"] / best["torch"], med["clinfm"] / med["torch"], rss["clinfm"] / rss["torch"]
  }' "$log"
