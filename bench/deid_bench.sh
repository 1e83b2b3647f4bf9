#!/usr/bin/env bash
# Text de-identification throughput, MB/s per core, on the Synthea bulk notes
# ($CLINFM_DATA/synthea-bulk-ndjson/DocumentReference.000.ndjson, 1,215 notes, 1.6 MB of text).
#
#   bash bench/deid_bench.sh [ROUNDS]
#
# The rules folder is $CLINFM_DEID_RULES when set (a candidate's scratch folder), else data/deid.
# Compiles bench/deid_bench.c with the de-identifier's sources only (bench_build_deid in
# bench/lib.sh, so it runs even while other modules are mid-change), then times find + redact
# over every note on one thread. The per-core figure uses the thread's CPU time; wall time is
# printed too (the machine is shared, run with nice and expect noise). Issue 4's target is at
# least 5 MB/s; PhysioNet deid manages about 0.012 MB/s here.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${1:-5}
OUT=${BUILD:-build}/bench
mkdir -p "$OUT"
bench_build_deid deid_bench
BULK=$(bench_data synthea-bulk-ndjson)
nice "$OUT/deid_bench" "${CLINFM_DEID_RULES:-data/deid}" "$BULK/DocumentReference.000.ndjson" "$ROUNDS"
