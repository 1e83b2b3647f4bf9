#!/usr/bin/env bash
# Population generator benchmark (issue 16): patients/s, events/s and peak RSS of `clinfm synth`
# on 2 threads. FHIR NDJSON for 10k (with and without ground truth) and 100k patients; the compact
# layouts (MIMIC-IV and OMOP CDM tables, gzipped) for 10k, then for 1 million patients written to
# disk when the disk has room for them (checked against the 10k runs' size, with a 2x margin; the
# output is deleted after measuring): the target is a million patients (hundreds of millions of
# events) in under an hour on 2 cores with memory flat in N. A million patients of FHIR NDJSON
# (~140 GB) do not fit here; the CSV layouts are ~2-6 GB.
# References measured in the same run: `clinfm ingest --format fhir` of the 10k output (events/s:
# the generator should never be the slower end of the pipeline), `clinfm ingest` of the 10k MIMIC
# tables through mappings/mimic-iv.map (needs $CLINFM_DATA for its ICD-9 maps; skipped without),
# and `dd` writing as many bytes as the 100k FHIR output (the disk's own speed).
# Usage: bash bench/synth_bench.sh [BUILD_DIR]
#        SYNTH_BENCH_MILLION=0 skips the 1M runs; SYNTH_BENCH_TMP=DIR writes there (default /tmp)
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
  awk -v nm="$name" -v s="$secs" -v u="$user" -v y="$sys" -v r="$rss" -v n="$n" -v e="$ev" -v b="$bytes" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
    printf "%-30s patients=%d events=%d seconds=%.1f cpu_s=%.1f patients_per_s=%.0f events_per_s=%.0f events_per_patient=%.0f MB=%.0f MB_per_s=%.1f peak_rss_mb=%.0f load=%s\n",
      nm, n, e, s, u + y, n / s, e / s, e / n, b / 1e6, b / 1e6 / s, r / 1024, l }' | tee -a "$TMP/results"
}

run "10k fhir, truth (8 paths)" --patients 10000 --seed 1
run "10k fhir, no truth" --patients 10000 --seed 1 --truth-paths 0
# reference: ingesting the same 10k output
/usr/bin/time -f "%e %M" -o "$TMP/itime" "$BIN" ingest --format fhir --quiet --input "$TMP/out/fhir" --out "$TMP/ingest.store"
read -r isecs irss < "$TMP/itime"
iev=$(python3 -c "import json;print(json.load(open('$TMP/out/manifest.json'))['events'])")
rm -f "$TMP/ingest.store"
run "10k mimic-csv, no truth" --patients 10000 --seed 1 --truth-paths 0 --format mimic-csv
mb10k_mimic=$(du -sb "$TMP/out" | cut -f1)
msecs=""
if [ -d "${CLINFM_DATA:-../shared/data}/terminology" ]; then
  /usr/bin/time -f "%e %M" -o "$TMP/mtime" "$BIN" ingest --mapping mappings/mimic-iv.map --quiet --input "$TMP/out" --out "$TMP/ingest.store"
  read -r msecs mrss < "$TMP/mtime"
  mev=$(python3 -c "import json;print(json.load(open('$TMP/out/manifest.json'))['events'])")
  rm -f "$TMP/ingest.store"
fi
run "10k omop-csv, no truth" --patients 10000 --seed 1 --truth-paths 0 --format omop-csv
mb10k_omop=$(du -sb "$TMP/out" | cut -f1)
run "100k fhir, no truth" --patients 100000 --seed 1 --truth-paths 0
bytes100k=$(du -sb "$TMP/out" | cut -f1)
rm -rf "$TMP/out"
/usr/bin/time -f "%e" -o "$TMP/dtime" dd if=/dev/zero of="$TMP/dd.bin" bs=4M count=$((bytes100k / 4194304 + 1)) conv=fsync status=none
dsecs=$(cat "$TMP/dtime"); rm -f "$TMP/dd.bin"
if [ "${SYNTH_BENCH_MILLION:-1}" = 1 ]; then
  for f in mimic-csv omop-csv; do
    [ "$f" = mimic-csv ] && need=$mb10k_mimic || need=$mb10k_omop
    need=$((need * 100 * 2))
    free=$(( $(df -B1 --output=avail "$TMP" | tail -1) ))
    if [ "$free" -lt "$need" ]; then
      echo "1M $f: skipped, the disk has $((free / 1000000000)) GB free and the output needs about $((need / 2000000000)) GB (x2 margin)"
      continue
    fi
    run "1M $f, no truth" --patients 1000000 --seed 1 --truth-paths 0 --format $f
    rm -rf "$TMP/out"
  done
fi
awk -v is="$isecs" -v ie="$iev" -v ms="$msecs" -v me="${mev:-0}" -v b100="$bytes100k" -v ds="$dsecs" '
  function f(line, key,   i, kv) { for (i = 1; i <= split(line, w, " "); i++) { split(w[i], kv, "="); if (kv[1] == key) return kv[2] + 0 } return 0 }
  /^10k fhir, no truth/ { g10 = f($0, "events_per_s"); r1 = f($0, "peak_rss_mb") }
  /^10k mimic-csv/ { gm = f($0, "events_per_s"); rm = f($0, "peak_rss_mb") }
  /^10k omop-csv/ { ro = f($0, "peak_rss_mb") }
  /^100k fhir/ { r10 = f($0, "peak_rss_mb"); s100 = f($0, "seconds"); mbs = f($0, "MB_per_s") }
  /^1M mimic-csv/ { s1m = f($0, "seconds"); e1m = f($0, "events"); rm1 = f($0, "peak_rss_mb") }
  /^1M omop-csv/ { s1o = f($0, "seconds"); e1o = f($0, "events"); ro1 = f($0, "peak_rss_mb") }
  END {
    printf "reference: clinfm ingest --format fhir of the 10k output: %.0f events/s; synth/ingest = %.1fx\n", ie / is, g10 / (ie / is)
    if (ms) printf "reference: clinfm ingest of the 10k MIMIC tables: %.0f events/s; synth/ingest = %.1fx\n", me / ms, gm / (me / ms)
    printf "reference: dd writes the 100k FHIR output size (%.0f MB) at %.0f MB/s; synth wrote FHIR at %.0f MB/s (%.2fx the disk)\n", b100 / 1e6, b100 / 1e6 / ds, mbs, mbs / (b100 / 1e6 / ds)
    printf "memory: peak RSS %.0f MB at 10k and %.0f MB at 100k (FHIR)", r1, r10
    if (rm1) printf "; MIMIC %.0f MB at 10k, %.0f MB at 1M", rm, rm1
    if (ro1) printf "; OMOP %.0f MB at 10k, %.0f MB at 1M", ro, ro1
    printf "\n"
    if (s1m) printf "scale: 1M patients as MIMIC-IV tables, %.0f events, in %.0f s (%.1f min; target under 60 min)\n", e1m, s1m, s1m / 60
    if (s1o) printf "scale: 1M patients as OMOP CDM tables, %.0f events, in %.0f s (%.1f min; target under 60 min)\n", e1o, s1o, s1o / 60
  }' "$TMP/results"
