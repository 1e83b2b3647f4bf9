#!/usr/bin/env bash
# FHIR ingestion benchmark (issue 3): end-to-end ingestion of the 615 gzipped Synthea R4 bundles
# into an event store, against Python doing only gzip + json.loads of the same files, in the same
# run. Prints both times (best of FHIR_BENCH_REPEAT, default 3), the ratio (target >= 3x), and
# peak RSS from /usr/bin/time -v, also for a 100-bundle subset to show that memory does not grow
# with the number of bundles. Run on a quiet machine; `nice` keeps it polite on a shared one.
# Usage: bash bench/fhir_bench.sh [BUILD_DIR]   (default build; needs BUILD_DIR/libclinfm.a)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${1:-build}
DATA=$(bench_data synthea-fhir-r4)
REPEAT=${FHIR_BENCH_REPEAT:-3}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/clinfm-fhir-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The CLI when it knows --format fhir, else a driver over the same C API.
if [ -x "$BUILD/clinfm" ] && "$BUILD/clinfm" ingest --help 2>&1 | grep -- fhir >/dev/null; then
  INGEST=("$BUILD/clinfm" ingest --format fhir --quiet --input); OUTFLAG=(--out); how="clinfm ingest --format fhir"
  BIN="$BUILD/clinfm"
else
  for extra in "-ldeflate" ""; do
    cc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread bench/fhir_bench.c "$BUILD/libclinfm.a" \
       -lcjson -lsodium -lzstd -lz -lm -lpthread $extra -o "$TMP/fhir_ingest" 2>/dev/null && break
  done
  [ -x "$TMP/fhir_ingest" ] || { echo "fhir_bench: cannot link bench/fhir_bench.c against $BUILD/libclinfm.a" >&2; exit 1; }
  INGEST=("$TMP/fhir_ingest"); OUTFLAG=(); how="bench/fhir_bench.c (fhir_ingest C API)"
  BIN="$TMP/fhir_ingest"
fi
if nm "$BIN" 2>/dev/null | grep "libdeflate_gzip_decompress_ex" >/dev/null; then inflater=libdeflate
else inflater="zlib (built without -DCLINFM_WITH_LIBDEFLATE -ldeflate)"; fi

cat > "$TMP/py_load.py" <<'PYEOF'
import gzip, json, os, sys
d = sys.argv[1]
n = size = 0
for f in sorted(os.listdir(d)):
    if f.endswith('.json.gz'):
        with gzip.open(os.path.join(d, f), 'rb') as fh:
            raw = fh.read()
        json.loads(raw)
        n += 1
        size += len(raw)
print(n, size)
PYEOF

# measure CMD... -> sets SECS, CPU and RSS_KB: the best wall time of REPEAT runs, that run's
# user+system CPU seconds and peak RSS
measure() {
  local best="" best_rss="" best_cpu=""
  for _ in $(seq "$REPEAT"); do
    nice /usr/bin/time -v "$@" >"$TMP/out" 2>"$TMP/time" || { cat "$TMP/time" >&2; exit 1; }
    local w rss cpu
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$TMP/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
    cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$TMP/time")
    if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then
      best=$w; best_rss=$rss; best_cpu=$cpu
    fi
  done
  SECS=$best; RSS_KB=$best_rss; CPU=$best_cpu
}

read -r nfiles nbytes < <($PY "$TMP/py_load.py" "$DATA")
mb=$(awk -v b="$nbytes" 'BEGIN{printf "%.0f", b/1e6}')
echo "input: $DATA, $nfiles gzipped bundles, $mb MB of JSON; ingest via $how; gzip via $inflater"
echo "threads: ${CLINFM_THREADS:-default ($(nproc) online CPUs, at most 4)}; best of $REPEAT alternating runs each"

# clinfm and Python alternate, so both see the same load on a shared machine.
c_secs=""; p_secs=""
for _ in $(seq "$REPEAT"); do
  REPEAT=1 measure "${INGEST[@]}" "$DATA" "${OUTFLAG[@]}" "$TMP/all.store"
  if [ -z "$c_secs" ] || awk -v a="$SECS" -v b="$c_secs" 'BEGIN{exit !(a<b)}'; then
    c_secs=$SECS; c_rss=$RSS_KB; c_cpu=$CPU
  fi
  REPEAT=1 measure $PY "$TMP/py_load.py" "$DATA"
  if [ -z "$p_secs" ] || awk -v a="$SECS" -v b="$p_secs" 'BEGIN{exit !(a<b)}'; then
    p_secs=$SECS; p_rss=$RSS_KB; p_cpu=$CPU
  fi
done

# Memory must not grow with the number of bundles. The store writer buffers events up to its
# budget (256 MB by default) before spilling sorted runs, so compare with a small budget: the 100
# largest bundles against all of them.
mkdir -p "$TMP/subset"
ls -S "$DATA" > "$TMP/by_size"
n=0
while IFS= read -r f && [ $n -lt 100 ]; do
  case "$f" in *.json.gz) ln -s "$PWD/$DATA/$f" "$TMP/subset/$f"; n=$((n + 1)) ;; esac
done < "$TMP/by_size"
REPEAT=1 measure "${INGEST[@]}" "$TMP/subset" "${OUTFLAG[@]}" "$TMP/subset.store" --memory-mb 4
s_rss=$RSS_KB
REPEAT=1 measure "${INGEST[@]}" "$DATA" "${OUTFLAG[@]}" "$TMP/small.store" --memory-mb 4
m_rss=$RSS_KB
cmp -s "$TMP/all.store" "$TMP/small.store" || echo "warning: the 4 MB-budget store differs from the default one" >&2

awk -v c="$c_secs" -v p="$p_secs" -v mb="$mb" -v cr="$c_rss" -v pr="$p_rss" -v sr="$s_rss" \
    -v cc="$c_cpu" -v pc="$p_cpu" -v mr="$m_rss" 'BEGIN {
  printf "clinfm  %6.2f s  %5.0f MB/s  cpu %6.2f s  peak RSS %4.0f MB   (parse, map, write the store)\n", c, mb/c, cc, cr/1024
  printf "python  %6.2f s  %5.0f MB/s  cpu %6.2f s  peak RSS %4.0f MB   (gzip + json.loads only)\n", p, mb/p, pc, pr/1024
  printf "ratio   %6.1fx faster than python in wall time (target >= 3x); %.1fx less CPU\n", p/c, pc/cc
  printf "clinfm peak RSS with a 4 MB store buffer: %.0f MB for the 100 largest bundles, %.0f MB for all\n", sr/1024, mr/1024
}'
