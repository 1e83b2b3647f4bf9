#!/usr/bin/env bash
# vocab --shards and export say before writing how much room their output needs on its
# filesystem and refuse (exit 1, nothing of theirs written there) without it; with room they run.
# The small filesystem is a tmpfs, so the test needs root (it is skipped, exit 77, without it).
set -uo pipefail
. "${CLINFM_ROOT:-.}/tests/cli/lib.sh"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
need_root_tmpfs
"$CLINFM" synth --patients 150 --seed 5 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/m.store" --quiet || exit 1
"$CLINFM" vocab --store "$T/m.store" --out "$T/v.bin" --shards "$T/ref" --no-baselines > /dev/null 2>&1 || exit 1
"$CLINFM" export --format meds-csv "$T/m.store" --out "$T/refcsv" > /dev/null 2>&1 || exit 1
shards=$(cat "$T"/ref/*.tokens | wc -c)
csv=$(cat "$T"/refcsv/*.csv | wc -c)
small_fs "$T/small" $(( shards / 2 / 1024 + 4 ))
"$CLINFM" vocab --store "$T/m.store" --out "$T/v2.bin" --shards "$T/small/sh" --no-baselines > /dev/null 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "vocab --shards with too little room exited $rc, want 1"; fail=1; }
grep -q "needs about .* free to write the token shard set.*room-check off" "$T/err.txt" || { echo "no room message: $(cat "$T/err.txt")"; fail=1; }
[ -z "$(ls -A "$T/small/sh" 2>/dev/null)" ] || { echo "a refused vocab left files: $(ls -A "$T/small/sh")"; fail=1; }
[ ! -e "$T/v2.bin" ] || { echo "a refused vocab fitted the vocabulary first"; fail=1; }
small_fs "$T/small" $(( csv / 2 / 1024 + 4 ))
"$CLINFM" export --format meds-csv "$T/m.store" --out "$T/small/csv" > /dev/null 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "export with too little room exited $rc, want 1"; fail=1; }
grep -q "needs about .* free to write the MEDS CSV" "$T/err.txt" || { echo "no room message: $(cat "$T/err.txt")"; fail=1; }
[ -z "$(ls -A "$T/small/csv" 2>/dev/null)" ] || { echo "a refused export left files: $(ls -A "$T/small/csv")"; fail=1; }
# Room enough: the shards' bound (12 bytes an event) and the CSV's estimate, with slack.
small_fs "$T/small" $(( (shards * 3 + csv * 2) / 1024 + 4096 ))
"$CLINFM" vocab --store "$T/m.store" --out "$T/v3.bin" --shards "$T/small/sh" --no-baselines > /dev/null 2> "$T/err.txt" \
  || { echo "vocab --shards with room refused: $(cat "$T/err.txt")"; fail=1; }
cmp -s "$T/ref/train.tokens" "$T/small/sh/train.tokens" || { echo "the shards differ"; fail=1; }
"$CLINFM" export --format meds-csv "$T/m.store" --out "$T/small/csv" > /dev/null 2> "$T/err.txt" \
  || { echo "export with room refused: $(cat "$T/err.txt")"; fail=1; }
cmp -s "$T/refcsv/data.csv" "$T/small/csv/data.csv" || { echo "the CSV differs"; fail=1; }
exit $fail
