#!/usr/bin/env bash
# `clinfm ingest --format fhir`: the bundled Bulk Data export ingests cleanly (13 subjects, the
# DocumentReference notes as text), a folder with bad resources is counted and reported, and
# --strict stops at the first bad resource with its location but never its value, leaving no store.
set -uo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
ROOT=${CLINFM_ROOT:-.}
fail=0

"$CLINFM" ingest --format fhir --input "$ROOT/data/synthea-bulk-ndjson" --out "$T/bulk.store" \
  --report "$T/bulk.json" > "$T/out.txt" 2> "$T/err.txt"
rc=$?
[ $rc -eq 0 ] || { echo "bulk ingest exited $rc: $(cat "$T/err.txt")"; fail=1; }
grep -q "rejections: none" "$T/out.txt" || { echo "bulk ingest reported rejections"; cat "$T/out.txt"; fail=1; }
"$CLINFM" inspect "$T/bulk.store" > "$T/inspect.txt" 2>&1 || { echo "inspect failed"; fail=1; }
grep -Eq "^subjects +13$" "$T/inspect.txt" || { echo "want 13 subjects:"; cat "$T/inspect.txt"; fail=1; }
notes=$(/usr/bin/python3 -c "import sys; print(sum(1 for l in open(sys.argv[1]) if l.strip()))" \
  "$ROOT/data/synthea-bulk-ndjson/DocumentReference.000.ndjson")
grep -Eq "^events .*[(, ]$notes with text" "$T/inspect.txt" || { echo "want $notes events with text:"; cat "$T/inspect.txt"; fail=1; }
/usr/bin/python3 - "$T/bulk.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
src = {s["source"]: s for s in r["sources"]}
assert src["Patient"]["rows"] == 13, src["Patient"]
assert src["DocumentReference"]["events"] == src["DocumentReference"]["rows"], src["DocumentReference"]
assert not r["rejections"], r["rejections"]
PY

# bad resources: counted with reasons, good ones kept
mkdir -p "$T/bad"
cat > "$T/bad/Patient.000.ndjson" <<'J'
{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-02-03"}
J
cat > "$T/bad/Observation.000.ndjson" <<'J'
{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":"2020-01-01T10:00:00Z","valueQuantity":{"value":70,"code":"/min"}}
{"resourceType":"Observation","id":"o2","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":"2020-01-01T10:00:00"}
{"resourceType":"Observation","id":"o3","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://local.example/codes","code":"PRIVATE-VALUE-42"}]},"effectiveDateTime":"2020-01-01T10:00:00Z"}
J
"$CLINFM" ingest --format fhir --input "$T/bad" --out "$T/bad.store" > "$T/out2.txt" 2>&1
rc=$?
[ $rc -eq 0 ] || { echo "lenient ingest exited $rc"; cat "$T/out2.txt"; fail=1; }
grep -q "date/time without time zone" "$T/out2.txt" || { echo "no time-zone rejection:"; cat "$T/out2.txt"; fail=1; }
grep -q "Observation.000.ndjson:3 (Observation/o3)" "$T/out2.txt" || { echo "no location for o3"; fail=1; }
grep -q "PRIVATE-VALUE-42" "$T/out2.txt" && { echo "a field value reached the report"; fail=1; }
"$CLINFM" inspect "$T/bad.store" | grep -Eq "^subjects +1$" || { echo "want 1 subject in bad.store"; fail=1; }

# strict: fatal at the first rejection, no store
"$CLINFM" ingest --format fhir --input "$T/bad" --out "$T/strict.store" --strict > /dev/null 2> "$T/err3.txt"
rc=$?
[ $rc -eq 1 ] || { echo "strict ingest exited $rc, want 1"; fail=1; }
grep -q "Observation.000.ndjson:2 (Observation/o2) at Observation.effectiveDateTime" "$T/err3.txt" \
  || { echo "strict error lacks the location: $(cat "$T/err3.txt")"; fail=1; }
[ -e "$T/strict.store" ] && { echo "strict failure left a store"; fail=1; }
exit $fail
