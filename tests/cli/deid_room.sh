#!/usr/bin/env bash
# deid says before any work when the output's filesystem lacks the room for the de-identified
# copy (about the input's size plus a fifth for the writer's spilled runs), and writes nothing
# there; with room it runs. The small filesystem is a tmpfs, so the test needs root (it is
# skipped, exit 77, without it).
set -uo pipefail
. "${CLINFM_ROOT:-.}/tests/cli/lib.sh"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
need_root_tmpfs
"$CLINFM" synth --patients 150 --seed 5 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/m.store" --quiet || exit 1
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$T/k.key"
size=$(stat -c %s "$T/m.store")
# A filesystem a little larger than the store but smaller than store + a fifth.
small_kb=$(( size * 21 / 20 / 1024 + 64 ))
small_fs "$T/small" ${small_kb}
"$CLINFM" deid "$T/m.store" --out "$T/small/d.store" --key "$T/k.key" --quiet 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "deid with too little room exited $rc, want 1"; fail=1; }
grep -q "needs about .* free to write the de-identified store" "$T/err.txt" || { echo "no room message: $(cat "$T/err.txt")"; fail=1; }
[ -z "$(ls -A "$T/small")" ] || { echo "a refused deid left files: $(ls -A "$T/small")"; fail=1; }
small_fs "$T/small" $(( size * 2 / 1024 + 8192 ))
"$CLINFM" deid "$T/m.store" --out "$T/small/d.store" --key "$T/k.key" --quiet 2> "$T/err2.txt" \
  || { echo "deid with room refused: $(cat "$T/err2.txt")"; fail=1; }
[ -s "$T/small/d.store" ] || { echo "no de-identified store written"; fail=1; }
exit $fail
