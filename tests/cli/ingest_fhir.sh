#!/usr/bin/env bash
# `clinfm ingest --format fhir`: the bundled Bulk Data export ingests cleanly (13 subjects, the
# DocumentReference notes as text, each patient's identifiers as PHI// events), a folder with bad resources is counted and reported, and
# --strict stops at the first bad resource with its location but never its value, leaving no store.
set -uo pipefail
. tests/cli/lib.sh
need_data BULK synthea-bulk-ndjson
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
ROOT=${CLINFM_ROOT:-.}
fail=0

"$CLINFM" ingest --format fhir --input "$BULK" --out "$T/bulk.store" \
  --report "$T/bulk.json" > "$T/out.txt" 2> "$T/err.txt"
rc=$?
[ $rc -eq 0 ] || { echo "bulk ingest exited $rc: $(cat "$T/err.txt")"; fail=1; }
grep -q "rejections: none" "$T/out.txt" || { echo "bulk ingest reported rejections"; cat "$T/out.txt"; fail=1; }
"$CLINFM" inspect "$T/bulk.store" > "$T/inspect.txt" 2>&1 || { echo "inspect failed"; fail=1; }
grep -Eq "^subjects +13$" "$T/inspect.txt" || { echo "want 13 subjects:"; cat "$T/inspect.txt"; fail=1; }
# The texts are the notes and the identifier (PHI//) events. Python derives the identifiers each
# patient should have from the JSON (names, telecom, address, identifiers, the practitioners and
# hospitals of its encounters and notes...) and subject ids from the Patient ids (BLAKE2b), and
# compares them with the export, subject by subject: each value once, nothing missing or extra.
"$CLINFM" export --format meds-csv "$T/bulk.store" --out "$T/export" > /dev/null 2>&1 || { echo "export failed"; fail=1; }
/usr/bin/python3 - "$BULK" "$T/export/data.csv" "$T/inspect.txt" <<'PY' || fail=1
import collections, csv, hashlib, json, re, sys
d, data_csv, inspect = sys.argv[1:4]
def lines(t):
    return [json.loads(l) for l in open(f"{d}/{t}.000.ndjson") if l.strip()]
def sid(key):
    v = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=32).digest()[:8], "little") & (2**63 - 1)
    return str(v or 1)
TITLES = {"mr.", "mrs.", "ms.", "dr."}
want = collections.defaultdict(set)
for p in lines("Patient"):
    w = want[sid(p["id"])]
    for n in p.get("name", []):
        full = [x for x in n.get("prefix", []) if x.lower() not in TITLES] + n.get("given", []) + [n["family"]]
        w |= {("NAME", " ".join(full)), ("NAME", n["family"])}
    w |= {("PHONE", t["value"]) for t in p.get("telecom", []) if t["system"] == "phone"}
    for a in p.get("address", []):
        w |= {("ADDRESS", l) for l in a["line"]} | {("CITY", a["city"]), ("STATE", a["state"]), ("ZIP", a["postalCode"])}
    for i in p.get("identifier", []):
        code = i.get("type", {}).get("coding", [{}])[0].get("code")
        w.add(({"SS": "SSN", "MR": "MRN"}.get(code, "ID"), i["value"]))
    for x in p.get("extension", []):
        if x["url"].endswith("patient-mothersMaidenName"): w.add(("NAME", x["valueString"]))
        if x["url"].endswith("patient-birthPlace"): w.add(("CITY", x["valueAddress"]["city"]))
def kind(ref):
    return "ORGANIZATION" if ref["reference"].startswith(("Organization", "Location")) else "NAME"
for t in ("AllergyIntolerance", "Condition", "DocumentReference", "Encounter", "Immunization",
          "MedicationRequest", "Procedure"):
    for r in lines(t):
        w = want[sid(r.get("subject", r.get("patient", {}))["reference"].split("/")[1])]
        refs = [r.get("subject", r.get("patient"))]
        if t == "Encounter":
            refs += [x["individual"] for x in r.get("participant", [])] + [x["location"] for x in r.get("location", [])]
            refs.append(r.get("serviceProvider"))
        if t == "DocumentReference":
            refs += [r.get("custodian")] + r.get("author", [])
        w |= {(kind(x) if x is not refs[0] else "NAME", x["display"]) for x in refs if x and "display" in x}
got = collections.defaultdict(list)
texts = 0
with open(data_csv, newline="") as f:
    for row in csv.DictReader(f):
        texts += row["text_value"] != ""
        if row["code"].startswith("PHI//"):
            assert row["time"] == "", "identifier events must be static"
            got[row["subject_id"]].append((row["code"][5:], row["text_value"]))
ok = True
for s in set(want) | set(got):
    g = got.get(s, [])
    if len(g) != len(set(g)) or set(g) != want.get(s, set()):
        print(f"subject: {len(g)} identifier events ({len(set(g))} distinct), {len(want.get(s, ()))} expected,"
              f" {len(set(g) - want.get(s, set()))} unexpected, {len(want.get(s, set()) - set(g))} missing")
        ok = False
n_phi = sum(len(g) for g in got.values())
kinds = collections.Counter(k for g in got.values() for k, _ in g)
notes = sum(1 for _ in lines("DocumentReference"))
print(f"identifier events: {n_phi} {dict(sorted(kinds.items()))}; notes: {notes}")
if not re.search(rf"^events .*[(, ]{notes + n_phi} with text", open(inspect).read(), re.M):
    print(f"want {notes} + {n_phi} events with text"); ok = False
if texts != notes + n_phi:
    print(f"export has {texts} text values, want {notes + n_phi}"); ok = False
for k in ("NAME", "PHONE", "SSN", "MRN", "ADDRESS", "ZIP", "ORGANIZATION"):
    if not kinds[k]: print(f"no PHI//{k} events"); ok = False
sys.exit(0 if ok else 1)
PY
/usr/bin/python3 - "$T/bulk.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
src = {s["source"]: s for s in r["sources"]}
assert src["Patient"]["rows"] == 13, src["Patient"]
assert src["DocumentReference"]["rows_with_events"] == src["DocumentReference"]["rows"], src["DocumentReference"]
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
