#!/usr/bin/env bash
# Population generator benchmark (issue 16): patients/s, events/s and peak RSS of
# `clinfm synth` on 2 threads for 10k and 100k patients, as FHIR NDJSON on disk, with and
# without ground truth; then 1 million patients with --format null (everything but the disk:
# the FHIR lines are still formatted, then dropped), because a million patients of FHIR NDJSON
# (~140 GB) do not fit on this disk; the FHIR time for a million is extrapolated from the 100k
# run's bytes/s and stated as such. References measured in the same run: `clinfm ingest --format
# fhir` of the 10k output (events/s: the generator should never be the slower end of the
# pipeline), and `dd` writing as many bytes as the 100k output (the disk's own speed).
# Usage: bash bench/synth_bench.sh [BUILD_DIR]   (SYNTH_BENCH_MILLION=0 skips the 1M run)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${1:-build}
BIN=$BUILD/clinfm
[ -x "$BIN" ] || { echo "synth_bench: build $BIN first (make)" >&2; exit 1; }
TMP=$(mktemp -d "${SYNTH_BENCH_TMP:-/tmp}/clinfm-synth-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
bench_machine

# run NAME ARGS... -> one result line: seconds, CPU seconds, patients/s, events/s, MB written, peak RSS
run() {
  local name=$1; shift
  rm -rf "$TMP/out"
  /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$BIN" synth --quiet --threads 2 --out "$TMP/out" "$@"
  read -r secs user sys rss < "$TMP/time"
  local n ev bytes
  n=$(python3 -c "import json;print(json.load(open('$TMP/out/manifest.json'))['patients'])")
  ev=$(python3 -c "import json;print(json.load(open('$TMP/out/manifest.json'))['events'])")
  bytes=$(du -sb "$TMP/out" | cut -f1)
  awk -v nm="$name" -v s="$secs" -v u="$user" -v y="$sys" -v r="$rss" -v n="$n" -v e="$ev" -v b="$bytes" 'BEGIN {
    printf "%-28s patients=%d events=%d seconds=%.1f cpu_s=%.1f patients_per_s=%.0f events_per_s=%.0f events_per_patient=%.0f MB=%.0f MB_per_s=%.1f peak_rss_mb=%.0f\n",
      nm, n, e, s, u + y, n / s, e / s, e / n, b / 1e6, b / 1e6 / s, r / 1024 }' | tee -a "$TMP/results"
}

run "10k fhir, truth (8 paths)" --patients 10000 --seed 1
run "10k fhir, no truth" --patients 10000 --seed 1 --truth-paths 0
# reference: ingesting the same 10k output
/usr/bin/time -f "%e %M" -o "$TMP/itime" "$BIN" ingest --format fhir --quiet --input "$TMP/out/fhir" --out "$TMP/ingest.store"
read -r isecs irss < "$TMP/itime"
iev=$(python3 -c "import json;print(json.load(open('$TMP/out/manifest.json'))['events'])")
rm -f "$TMP/ingest.store"
run "100k fhir, no truth" --patients 100000 --seed 1 --truth-paths 0
bytes100k=$(du -sb "$TMP/out" | cut -f1)
rm -rf "$TMP/out"
/usr/bin/time -f "%e" -o "$TMP/dtime" dd if=/dev/zero of="$TMP/dd.bin" bs=4M count=$((bytes100k / 4194304 + 1)) conv=fsync status=none
dsecs=$(cat "$TMP/dtime"); rm -f "$TMP/dd.bin"
if [ "${SYNTH_BENCH_MILLION:-1}" = 1 ]; then
  run "1M null (no disk), no truth" --patients 1000000 --seed 1 --truth-paths 0 --format null
fi
awk -v is="$isecs" -v ie="$iev" -v b100="$bytes100k" -v ds="$dsecs" '
  function f(line, key,   i, kv) { for (i = 1; i <= split(line, w, " "); i++) { split(w[i], kv, "="); if (kv[1] == key) return kv[2] + 0 } return 0 }
  /^10k fhir, no truth/ { g10 = f($0, "events_per_s") }
  /^100k fhir/ { r10 = f($0, "peak_rss_mb") } /^10k fhir, no truth/ { r1 = f($0, "peak_rss_mb") }
  /^100k fhir/ { s100 = f($0, "seconds"); e100 = f($0, "events") ; mbs = f($0, "MB_per_s") }
  /^1M null/ { s1m = f($0, "seconds"); e1m = f($0, "events"); r1m = f($0, "peak_rss_mb") }
  END {
    printf "reference: clinfm ingest --format fhir of the 10k output: %.0f events/s; synth/ingest = %.1fx\n", ie / is, g10 / (ie / is)
    printf "reference: dd writes the 100k output size (%.0f MB) at %.0f MB/s; synth wrote FHIR at %.0f MB/s (%.2fx the disk)\n", b100 / 1e6, b100 / 1e6 / ds, mbs, mbs / (b100 / 1e6 / ds)
    printf "memory: peak RSS %.0f MB at 10k, %.0f MB at 100k", r1, r10
    if (r1m) printf ", %.0f MB at 1M (null)", r1m
    printf "\n"
    if (s1m) {
      ext = s1m > s100 * 10 ? s1m : s100 * 10
      printf "scale: 1M patients, %.0f events, simulated and formatted in %.0f s (null sink); as FHIR NDJSON ~%.0f GB, which would take about %.0f s at the 100k run'"'"'s rate (extrapolated, not written)\n", e1m, s1m, b100 * 10 / 1e9, s100 * 10
    }
  }' "$TMP/results"
