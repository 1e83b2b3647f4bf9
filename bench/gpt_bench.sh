#!/usr/bin/env bash
# Training speed and peak memory of the clinfm GPT against the same model in PyTorch, and the
# share of the machine's fp32 FMA peak it reaches.
#
# Builds bench/gpt_bench.c (the model sources only, so a half-edited file elsewhere cannot stop
# it), then alternates ROUNDS runs of clinfm and of bench/gpt_bench_torch.py on the reference
# configuration (4 layers, d_model 256, 4 heads, context 256, batch 8, vocabulary 4096) with
# THREADS threads each, and prints the best and median tokens/s of each side, their peak RSS
# and the ratios. Each clinfm run also measures the FMA peak of its threads (AVX-512 where the
# CPU has it, else AVX2; bench/fma_peak.h) just before and after training, and the summary
# gives the share of that peak the training reached, over wall-clock time (share) and over
# CPU time (cpu share: what the run did on the cores it actually got). Alternating runs, and
# reporting the best as well as the median, is how this copes with a machine other people are
# using: both sides see the same noise, and the share divides by a peak measured under it.
# With AVX2=1, each round also runs clinfm on its forced AVX2 path (CLINFM_KERNELS=avx2).
#
#   bash bench/gpt_bench.sh                 # defaults: ROUNDS=3 STEPS=10 THREADS=2
#   ROUNDS=5 AVX2=1 bash bench/gpt_bench.sh --dropout 0
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
  if [ "${AVX2:-0}" = 1 ]; then
    CLINFM_KERNELS=avx2 OMP_NUM_THREADS=$THREADS nice "$OUT/gpt_bench" --steps "$STEPS" "$@" \
      | sed 's/^clinfm /clinfm_avx2 /' | tee -a "$log"
  fi
done

bench_summary gpt_bench tokens/s 1 "$log"
# Shares of the FMA peak, per path: best and median over rounds, each run divided by the peak
# it measured itself (under a changing load a run's peak and its training can fall in
# different moments, so wall-clock shares scatter both ways; the CPU-time ones do much less),
# and the best training rate over the best peak of all runs.
awk '
  function field(f,   i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) return kv[2] }
    return ""
  }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $1 == "torch" { k = ++nt; tct[k] = field("cpu_tokens_per_s") + 0 }
  $1 == "clinfm" || $1 == "clinfm_avx2" {
    s = $1; k = ++n[s]; path[s] = field("path"); isa = field("peak_isa")
    sh[s, k] = field("share"); cs[s, k] = field("cpu_share"); ct[s, k] = field("cpu_tokens_per_s")
    if (field("peak_gflops") + 0 > pk) pk = field("peak_gflops") + 0
    if (field("peak_cpu_gflops") + 0 > pkc) pkc = field("peak_cpu_gflops") + 0
    if (field("gflops") + 0 > gf[s]) gf[s] = field("gflops") + 0
  }
  END {
    printf "FMA peak (%s, measured in these runs): best %.0f GFLOP/s wall-clock, %.0f per CPU-second x threads\n", isa, pk, pkc
    for (s in n) {
      for (i = 1; i <= n[s]; i++) { a[i] = sh[s, i]; b[i] = cs[s, i]; c[i] = ct[s, i] }
      m1 = median(a, n[s]); m2 = median(b, n[s]); m3 = median(c, n[s])
      best1 = 0; best2 = 0; best3 = 0
      for (i = 1; i <= n[s]; i++) { if (a[i] > best1) best1 = a[i]; if (b[i] > best2) best2 = b[i]; if (c[i] > best3) best3 = c[i] }
      printf "clinfm %s path: share of peak %.0f%% best, %.0f%% median (best %.0f GFLOP/s, %.0f%% of the best peak); cpu share %.0f%% best, %.0f%% median (cpu tokens/s best %.0f, median %.0f)\n", path[s], 100 * best1, 100 * m1, gf[s], 100 * gf[s] / pk, 100 * best2, 100 * m2, best3, m3
      cb[s] = best3; cm[s] = m3
    }
    if (nt) {
      tb = 0; for (i = 1; i <= nt; i++) { d[i] = tct[i]; if (tct[i] > tb) tb = tct[i] }
      tm = median(d, nt)
      printf "torch: cpu tokens/s best %.0f, median %.0f\n", tb, tm
      for (s in n) printf "ratio clinfm %s / torch over CPU time: %.2fx best, %.2fx median\n", path[s], cb[s] / tb, cm[s] / tm
    }
  }' "$log"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
