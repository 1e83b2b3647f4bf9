# Shared steps of the benchmarks (the races of clinfm against PyTorch, gpt_bench.sh and
# sample_bench.sh; the de-identification stress runs; the long model evaluations): sourced,
# not run. The caller has cd'ed to the repository root and set OUT (the build folder).

# Builds bench/<name>.c against the model sources only, so that a half-edited file elsewhere in
# the tree cannot stop a benchmark, into $OUT/<name>. BENCH_OPT (default -O2) lets
# tests/cli/bench_build.sh check the source list quickly at -O0.
bench_build_model() {
  local name=$1
  mkdir -p "$OUT"
  # -fno-math-errno as the Makefile gives gpt_kernels.c (no errno from maths is read here).
  cc -std=c11 ${BENCH_OPT:--O2} -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -DCLINFM_WITH_DNNL \
     -fno-math-errno -Isrc -pthread -fopenmp -o "$OUT/$name" "bench/$name.c" src/model/gpt.c \
     src/model/gpt_kernels.c src/model/gpt_feat.c src/model/gpt_sample.c src/util/err.c src/util/atomic_file.c src/util/file.c \
     -lopenblas -ldnnl -lz -lm -lpthread
}

# Builds bench/<name>.c with the de-identifier's sources only (so it runs even while other
# modules are mid-change), into $OUT/<name>.
bench_build_deid() {
  local name=$1
  mkdir -p "$OUT"
  ${CC:-cc} -std=c11 ${BENCH_OPT:--O2} -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -Isrc -pthread \
    -o "$OUT/$name" "bench/$name.c" src/deid/find.c src/deid/fields.c src/deid/features.c src/deid/model.c src/deid/decode.c src/deid/slots.c src/deid/known.c src/deid/lexicon.c \
    src/deid/redact.c src/deid/rules.c src/deid/utf8.c src/util/atomic_file.c src/util/file.c src/util/err.c \
    src/util/strmap.c src/util/progress.c src/util/sbuf.c -lpcre2-8 -lsodium -lcjson -lm
}

# Scores a generated phrase-format notes file as written, upper- and lower-cased with $CLINFM
# (deid_keep_stress.sh, deid_recall_stress.sh): one line per casing with the gold spans missed,
# recall and precision (Safe Harbor, any overlap), labelled SEED and SET. $T is the caller's
# temporary folder.
bench_deid_stress_score() {
  local f=$1 seed=$2 set=$3 c
  for c in as_is upper lower; do
    "$CLINFM" deid-eval --corpus "$f" --format phrase $([ $c = as_is ] || echo --case $c) --json > "$T/r.json"
    /usr/bin/python3 -c '
import json,sys
a=json.load(open(sys.argv[1]))["overall_safe_harbor"]["any_overlap"]
print("seed %-6s %-8s %-6s gold %5d  missed %4d  recall %.4f  precision %.4f" % (sys.argv[2], sys.argv[3], sys.argv[4],
      a["gold"], a["gold"] - a["gold_found"], a["recall"], a["precision"]))' "$T/r.json" "$seed" "$set" "$c"
  done
}

# Exits with a message naming the Debian package when PyTorch cannot be imported.
bench_need_torch() {
  if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "$1: PyTorch is missing; install Debian's python3-torch (apt-get install -y python3-torch)" >&2
    exit 1
  fi
}

# The "machine:" line: CPUs, model name, (with simd=1) the widest SIMD extension, load average.
bench_machine() {
  local cpu simd=""
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  if [ "${1:-0}" = 1 ]; then
    simd=", widest SIMD $(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo none)"
  fi
  echo "machine: $(nproc) CPUs, $cpu$simd, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Summarises a log of "clinfm ..." and "torch ..." result lines (key=value fields): the best and
# median tokens_per_s of each side and their ratio, and with rss=1 the peak peak_rss_mb and its
# ratio. unit names what tokens_per_s counts ("tokens/s", "generated tokens/s").
bench_summary() { # name unit rss log
  awk -v name="$1" -v unit="$2" -v rss_on="$3" '
    function field(f,   i, kv) {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) return kv[2] + 0 }
      return 0
    }
    function median(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "clinfm" || $1 == "torch" {
      s = $1; n[s]++; tps[s, n[s]] = field("tokens_per_s")
      if (tps[s, n[s]] > best[s]) best[s] = tps[s, n[s]]
      if (rss_on && field("peak_rss_mb") > rss[s]) rss[s] = field("peak_rss_mb")
    }
    END {
      if (!n["clinfm"] || !n["torch"]) { print name ": a side produced no result"; exit 1 }
      for (s in n) { for (i = 1; i <= n[s]; i++) v[i] = tps[s, i]; med[s] = median(v, n[s]) }
      if (rss_on) {
        printf "clinfm: best %.0f %s, median %.0f, peak RSS %.0f MB\n", best["clinfm"], unit, med["clinfm"], rss["clinfm"]
        printf "torch:  best %.0f %s, median %.0f, peak RSS %.0f MB\n", best["torch"], unit, med["torch"], rss["torch"]
        printf "ratio clinfm/torch: %.2fx best, %.2fx median; memory %.2fx\n", best["clinfm"] / best["torch"], med["clinfm"] / med["torch"], rss["clinfm"] / rss["torch"]
      } else {
        printf "clinfm: best %.0f %s, median %.0f\n", best["clinfm"], unit, med["clinfm"]
        printf "torch:  best %.0f %s, median %.0f\n", best["torch"], unit, med["torch"]
        printf "ratio clinfm/torch: %.2fx best, %.2fx median\n", best["clinfm"] / best["torch"], med["clinfm"] / med["torch"]
      }
    }' "$4"
}

# Public datasets are read where they are kept (never from the repository): $CLINFM_DATA,
# default ../shared/data beside the checkout. bench_data NAME prints the dataset's path or exits.
bench_data() {
  local base=${CLINFM_DATA:-../shared/data}
  [ -e "$base/$1" ] || { echo "benchmark needs $base/$1 (set CLINFM_DATA)" >&2; exit 1; }
  printf '%s\n' "$base/$1"
}

# What a long benchmark run that was stopped halfway may reuse when it is run again
# (p12_eval.sh, fm_tasks.sh). A model bundle is trained when its training log (LOG) ends with
# the closing line naming it and its manifest, the bundle's commit point, is there.
bench_trained() {
  local model=$1 log=$2
  grep -q "^wrote $model " "$log" 2>/dev/null && [ -f "$model/manifest.json" ]
}
# An evaluation folder is complete when MODEL_CARD.md, the last of its files (each written
# atomically), is there.
bench_evaluated() {
  [ -f "$1/MODEL_CARD.md" ]
}
