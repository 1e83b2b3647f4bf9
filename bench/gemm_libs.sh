#!/usr/bin/env bash
# Races the sgemm libraries Debian offers on the GPT's matrix-product shapes (bench/gemm_libs.c):
# OpenBLAS (as this environment configures it), oneDNN, and BLIS and libxsmm when their -dev
# packages are installed (apt-get install -y libblis-dev libxsmm-dev; clinfm does not need
# them). This is how the model's AVX-512 library was chosen (docs/MODEL.md, "Speed").
#
#   bash bench/gemm_libs.sh [rows C V]      # defaults 512 256 4096: one batch slice of the
#                                           # reference configuration
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BUILD:-build-bench}
. bench/lib.sh
mkdir -p "$OUT"
defs=(-DHAVE_DNNL) libs=(-lopenblas -ldnnl)
if [ -e /usr/include/x86_64-linux-gnu/blis-openmp/blis.h ]; then
  defs+=(-DHAVE_BLIS -I/usr/include/x86_64-linux-gnu/blis-openmp)
  libs+=(-L/usr/lib/x86_64-linux-gnu/blis-openmp -l:libblis.so.4)
fi
if [ -e /usr/include/libxsmm.h ]; then defs+=(-DHAVE_XSMM); libs+=(-lxsmm -lrt -ldl); fi
cc -std=c11 -O2 -D_GNU_SOURCE -fopenmp "${defs[@]}" -o "$OUT/gemm_libs" bench/gemm_libs.c \
   "${libs[@]}" -lpthread -lm
bench_machine 1
OMP_NUM_THREADS=2 "$OUT/gemm_libs" "$@"
