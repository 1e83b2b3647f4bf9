#!/usr/bin/env bash
# ingest says before reading a row how much disk the store needs on the output's filesystem (from
# a sample of the tables through the mapping) and refuses, writing nothing there, when it is not
# free; with room it runs and writes the same store as without the check. The small filesystem is
# a tmpfs, so the test needs root (it is skipped, exit 77, without it).
set -uo pipefail
. "${CLINFM_ROOT:-.}/tests/cli/lib.sh"
need_data MIMIC mimic-iv-demo
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
need_root_tmpfs
ingest() { "$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" "$@"; }
ingest --out "$T/m.store" --room-check off --quiet || exit 1
size=$(stat -c %s "$T/m.store")
# Half the store's size: the store cannot fit, so the ingest must not start.
small_fs "$T/small" $(( size / 2 / 1024 ))
ingest --out "$T/small/m.store" > "$T/out.txt" 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "ingest with too little room exited $rc, want 1"; fail=1; }
grep -q "needs about .* free to write the store (about .* M events, estimated from a sample" "$T/err.txt" \
  || { echo "no room message: $(cat "$T/err.txt")"; fail=1; }
grep -q "room-check off" "$T/err.txt" || { echo "the refusal does not name the override"; fail=1; }
[ ! -s "$T/out.txt" ] || { echo "a refused ingest printed a report: $(head -3 "$T/out.txt")"; fail=1; }
[ -z "$(ls -A "$T/small")" ] || { echo "a refused ingest left files: $(ls -A "$T/small")"; fail=1; }
# Four times the store's size: room enough (the estimate errs large, but not 4x on this input).
small_fs "$T/small" $(( size * 4 / 1024 ))
# The estimate is said and is within [1x, 3x] of the store written.
ingest --out "$T/small/m.store" > /dev/null 2> "$T/err2.txt" \
  || { echo "ingest with room refused: $(cat "$T/err2.txt")"; fail=1; }
cmp -s "$T/m.store" "$T/small/m.store" || { echo "the store written after the check differs"; fail=1; }
est=$(sed -n 's/.*the store (about \([0-9.]*\) MiB.*/\1/p' "$T/err2.txt")
awk -v e="$est" -v s="$size" 'BEGIN { r = e * 1048576 / s; exit !(r >= 1 && r <= 3) }' \
  || { echo "estimate $est MiB against a store of $size bytes: $(cat "$T/err2.txt")"; fail=1; }
exit $fail
