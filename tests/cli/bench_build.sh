#!/usr/bin/env bash
# The model and de-identifier benchmarks build from lists of sources of their own (bench/lib.sh),
# not from the library, so a source they come to need must join those lists: this links them the
# way bench/gpt_bench.sh, sample_bench.sh and deid_bench.sh do (at -O0, about 13 s), and fails
# when a list has fallen behind (as it once lacked src/model/gpt_feat.c, and src/util/file.c when
# atomic_file.c came to copy files). Every bench/*.c is also linked against the library by
# `make tests` (Makefile, bench-check).
set -euo pipefail
cd "${CLINFM_ROOT:-$(dirname "$0")/../..}"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
. bench/lib.sh
for name in gpt_bench sample_bench deid_bench; do
  build=bench_build_model
  [ "$name" = deid_bench ] && build=bench_build_deid
  BENCH_OPT=-O0 $build "$name" || { echo "bench/lib.sh cannot build bench/$name.c"; exit 1; }
  [ -x "$OUT/$name" ] || { echo "bench/$name.c: no program built"; exit 1; }
done
echo "bench build: ok"
