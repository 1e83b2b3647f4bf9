#!/usr/bin/env bash
# deid says before any work when the output's filesystem lacks the room for the de-identified
# copy (about the input's size plus a fifth for the writer's spilled runs), and writes nothing
# there; with room it runs. The small filesystem is a tmpfs, so the test needs root (it is
# skipped, exit 77, without it).
set -uo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root to mount a small tmpfs" >&2; exit 77; fi
"$CLINFM" synth --patients 150 --seed 5 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/m.store" --quiet || exit 1
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$T/k.key"
size=$(stat -c %s "$T/m.store")
# A filesystem a little larger than the store but smaller than store + a fifth.
small_kb=$(( size * 21 / 20 / 1024 + 64 ))
mkdir -p "$T/small"
mount -t tmpfs -o size=${small_kb}k tmpfs "$T/small" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here" >&2; exit 77; }
trap 'umount "$T/small" 2>/dev/null' EXIT
"$CLINFM" deid "$T/m.store" --out "$T/small/d.store" --key "$T/k.key" --quiet 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "deid with too little room exited $rc, want 1"; fail=1; }
grep -q "needs about .* MB free to write the de-identified store" "$T/err.txt" || { echo "no room message: $(cat "$T/err.txt")"; fail=1; }
[ -z "$(ls -A "$T/small")" ] || { echo "a refused deid left files: $(ls -A "$T/small")"; fail=1; }
umount "$T/small"
mount -t tmpfs -o size=$(( size * 2 / 1024 + 8192 ))k tmpfs "$T/small" || exit 1
"$CLINFM" deid "$T/m.store" --out "$T/small/d.store" --key "$T/k.key" --quiet 2> "$T/err2.txt" \
  || { echo "deid with room refused: $(cat "$T/err2.txt")"; fail=1; }
[ -s "$T/small/d.store" ] || { echo "no de-identified store written"; fail=1; }
exit $fail
