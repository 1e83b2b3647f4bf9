#!/usr/bin/env bash
# Data-parallel training speed: `clinfm train` as 1 process x 2 threads (--batch 8) against
# `mpirun -np 2` ranks x 1 thread (--batch 4 each, the same global batch of 8), on the reference
# configuration (4 layers, d_model 256, 4 heads, context 256, dropout 0.1) over the bundled
# MIMIC-IV demo, de-identified. Runs alternate, ROUNDS of each, so both see the same noise from
# other users of the machine; prints each run's training tokens/s (from MODEL/train.json, which
# counts the tokens of all ranks and excludes evaluation), then the best and median of each
# side and their ratio.
#
#   bash bench/train_mpi_bench.sh            # defaults: ROUNDS=2 STEPS=8
#   CLINFM=build-mpi/clinfm ROUNDS=3 STEPS=12 bash bench/train_mpi_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-8}
CLINFM=${CLINFM:-build/clinfm}
[ -x "$CLINFM" ] || make --no-print-directory all BUILD="$(dirname "$CLINFM")" > /dev/null
command -v mpirun > /dev/null || { echo "train_mpi_bench: mpirun is missing; install openmpi-bin (scripts/deps.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. bench/lib.sh
MIMIC=$(bench_data mimic-iv-demo)

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$W/m.store" --quiet
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$W/k.key"
"$CLINFM" deid "$W/m.store" --out "$W/d.store" --key "$W/k.key" --quiet
"$CLINFM" vocab --store "$W/d.store" --out "$W/v.vocab" > /dev/null

bench_machine 1
echo "config: 4 layers, d_model 256, 4 heads, context 256, dropout 0.1, global batch 8, $STEPS steps, $ROUNDS rounds"
# --steps is large and --stop-after short, so neither run pays for the held-out evaluation.
A=(--store "$W/d.store" --vocab "$W/v.vocab" --layers 4 --d-model 256 --heads 4 --context 256 --dropout 0.1
   --steps 1000 --stop-after "$STEPS" --eval-every 1000 --eval-batches 1 --seed 1)
tps() { /usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["tokens_per_second"]))' "$1"; }
log="$W/results"
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$W/one"* "$W/two"*
  env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS nice "$CLINFM" train "${A[@]}" --batch 8 --threads 2 \
    --shards "$W/one.shards" --out "$W/one.ckpt" > "$W/one.log"
  echo "one tokens_per_s=$(tps "$W/one.ckpt/train.json")" | tee -a "$log"
  env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS nice mpirun -np 2 --oversubscribe "$CLINFM" train "${A[@]}" --batch 4 \
    --shards "$W/two.shards" --out "$W/two.ckpt" > "$W/two.log"
  grep -q "data-parallel: 2 ranks .* 1 threads per rank" "$W/two.log" || { echo "unexpected rank layout:"; cat "$W/two.log"; exit 1; }
  echo "two tokens_per_s=$(tps "$W/two.ckpt/train.json")" | tee -a "$log"
done
awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { split($2, kv, "="); s = $1; n[s]++; v[s, n[s]] = kv[2] + 0; if (kv[2] + 0 > best[s]) best[s] = kv[2] + 0 }
  END {
    for (s in n) { for (i = 1; i <= n[s]; i++) x[i] = v[s, i]; med[s] = median(x, n[s]) }
    printf "1 process x 2 threads: best %.0f tokens/s, median %.0f\n", best["one"], med["one"]
    printf "2 ranks x 1 thread:    best %.0f tokens/s, median %.0f\n", best["two"], med["two"]
    printf "ratio 2 ranks / 1 process: %.2fx best, %.2fx median\n", best["two"] / best["one"], med["two"] / med["one"]
  }' "$log"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
