#!/usr/bin/env bash
# A killed, interrupted or failed ingest leaves no store and no temporary files behind.
set -uo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
mkdir -p "$T/in" "$T/out"
# About 2.5 million rows: long enough to be caught mid-ingest.
/usr/bin/python3 - "$T/in/big.csv" <<'PY'
import sys, random
random.seed(1)
with open(sys.argv[1], "w") as f:
    f.write("sid,t,item,val\n")
    for i in range(2_500_000):
        f.write(f"{i % 5000},2100-01-{1 + i % 28:02d} {i % 24:02d}:00:00,{i % 300},{i % 97}.5\n")
PY
cat > "$T/big.map" <<'M'
[table big]
file = big.csv
subject = sid
[event big/lab]
code = LAB//{item}
time = {t}
numeric = {val}
M
# Waits until process $1 has read a third of file $2 (or has exited).
mid_ingest() {
  local want=$(( $(stat -c %s "$2") / 3 )) got
  while kill -0 "$1" 2>/dev/null; do
    got=$(awk '/^rchar:/ {print $2}' "/proc/$1/io" 2>/dev/null)
    [ -n "$got" ] && [ "$got" -ge "$want" ] && return 0
    sleep 0.01
  done
}
fail=0
for sig in KILL INT TERM; do
  "$CLINFM" ingest --mapping "$T/big.map" --input "$T/in" --out "$T/out/big.store" --quiet --memory-mb 16 &
  pid=$!
  # Signal once a third of the input has been read: the store cannot be committed before the
  # last row, so the signal lands mid-ingest on any machine (a fixed sleep raced a fast one).
  mid_ingest "$pid" "$T/in/big.csv"
  kill -$sig $pid 2>/dev/null
  wait $pid; rc=$?
  if [ $rc -eq 0 ]; then echo "ingest finished before SIG$sig; test inconclusive"; fail=1; fi
  left=$(ls -A "$T/out")
  if [ -n "$left" ]; then echo "after SIG$sig the output folder holds: $left"; fail=1; fi
done
# A fatal error part-way (strict mode, a bad row near the end) also leaves nothing.
echo "1,not-a-time,1,1" >> "$T/in/big.csv"
"$CLINFM" ingest --mapping "$T/big.map" --input "$T/in" --out "$T/out/big.store" --quiet --strict 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "strict ingest with a bad row exited $rc, want 1"; fail=1; }
grep -q "big.csv:2500002" "$T/err.txt" || { echo "error does not name file:line: $(cat "$T/err.txt")"; fail=1; }
grep -q "not-a-time" "$T/err.txt" && { echo "error message leaks the field value"; fail=1; }
[ -z "$(ls -A "$T/out")" ] || { echo "failed ingest left: $(ls -A "$T/out")"; fail=1; }
# Without --strict the same input succeeds and reports the one rejection.
"$CLINFM" ingest --mapping "$T/big.map" --input "$T/in" --out "$T/out/big.store" > "$T/ok.txt" || fail=1
grep -q "rejections (1)" "$T/ok.txt" || { echo "rejection not reported: $(cat "$T/ok.txt")"; fail=1; }
[ "$(ls -A "$T/out")" = "big.store" ] || { echo "unexpected files: $(ls -A "$T/out")"; fail=1; }
exit $fail
