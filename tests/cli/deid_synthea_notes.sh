#!/usr/bin/env bash
# De-identification of real-shaped notes end to end: the bundled Synthea Bulk Data export (13
# patients, 1,215 DocumentReference notes that name the patient) goes through
# `ingest --format fhir` (which hands the patients' identifiers over as PHI// events), `keygen`,
# `deid` and `export --format meds-csv`. Python then reads the original Patient resources and
# checks that none of their names, birth dates, street address lines, phone numbers or SSNs is
# left in any text value of the export, and that the notes are still there and still clinical.
#
# Synthea's notes name the patient but hold no birth dates, addresses, phones or SSNs, so the
# pipeline runs twice: on the export as bundled ("plain"), and on a copy whose notes each get a
# sentence with the patient's identifiers in varying formats appended ("spiked").
# Failures print kinds and counts, never the values.
set -uo pipefail
. tests/cli/lib.sh
need_data BULK synthea-bulk-ndjson
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
ROOT=${CLINFM_ROOT:-.}
DATA="$BULK"
fail=0

mkdir -p "$T/spiked"
/usr/bin/python3 - "$DATA" "$T/spiked" <<'PY' || exit 1
import base64, json, os, shutil, sys
src, dst = sys.argv[1:3]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
for f in os.listdir(src):
    if f.endswith(".ndjson") and not f.startswith("DocumentReference"):
        shutil.copy(os.path.join(src, f), dst)
pats = {}
for l in open(os.path.join(src, "Patient.000.ndjson")):
    if l.strip():
        p = json.loads(l)
        pats[p["id"]] = p
def sentence(p, i):
    n = p["name"][0]
    given, family = n["given"][0], n["family"]
    y, m, d = (int(v) for v in p["birthDate"].split("-"))
    a = p["address"][0]
    phone = p["telecom"][0]["value"]
    dg = "".join(ch for ch in phone if ch.isdigit())
    phones = [phone, f"({dg[:3]}) {dg[3:6]}-{dg[6:]}", f"{dg[:3]}.{dg[3:6]}.{dg[6:]}"]
    ssn = next(x["value"] for x in p["identifier"]
               if any(c.get("code") == "SS" for c in x.get("type", {}).get("coding", [])))
    born = [p["birthDate"], f"{m:02d}/{d:02d}/{y}", f"{MONTHS[m - 1]} {d}, {y}"]
    who = [f"{given} {family}", f"{family.upper()}, {given.upper()}", f"Mrs. {family}"]
    return (f"\n\nSeen with {who[i % 3]} (DOB {born[i % 3]}), of {a['line'][0]}, {a['city']}, "
            f"{a['state']} {a['postalCode']}. Call {phones[i % 3]} if needed. SSN {ssn}.\n")
with open(os.path.join(dst, "DocumentReference.000.ndjson"), "w") as out:
    for i, l in enumerate(open(os.path.join(src, "DocumentReference.000.ndjson"))):
        if not l.strip():
            continue
        r = json.loads(l)
        p = pats[r["subject"]["reference"].split("/")[-1]]
        for c in r["content"]:
            a = c["attachment"]
            a["data"] = base64.b64encode(base64.b64decode(a["data"]) + sentence(p, i).encode()).decode()
        out.write(json.dumps(r) + "\n")
PY

"$CLINFM" keygen --out "$T/key" > /dev/null 2> "$T/keygen.txt" \
  || { echo "keygen failed:"; cat "$T/keygen.txt"; exit 1; }

for set in plain spiked; do
  in="$DATA"; [ $set = spiked ] && in="$T/spiked"
  S="$T/$set"; mkdir -p "$S"
  "$CLINFM" ingest --format fhir --input "$in" --out "$S/raw.store" --quiet > "$S/ingest.txt" 2>&1 \
    || { echo "$set: ingest failed:"; cat "$S/ingest.txt"; exit 1; }
  "$CLINFM" deid "$S/raw.store" --out "$S/deid.store" --key "$T/key" --report "$S/report.json" \
    --quiet > "$S/deid.txt" 2>&1 || { echo "$set: deid failed:"; cat "$S/deid.txt"; exit 1; }
  for st in raw deid; do
    "$CLINFM" export --format meds-csv "$S/$st.store" --out "$S/$st" > "$S/export.txt" 2>&1 \
      || { echo "$set: export of $st failed:"; cat "$S/export.txt"; exit 1; }
  done
  echo "== $set"
  /usr/bin/python3 - "$set" "$DATA" "$S" <<'PY' || fail=1
import collections, csv, datetime, hashlib, json, re, sys
which, data, S = sys.argv[1:4]
csv.field_size_limit(1 << 30)
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
def date_forms(day):
    return {day.isoformat(), f"{day.month:02d}/{day.day:02d}/{day.year}", f"{MONTHS[day.month - 1]} {day.day}, {day.year}".lower()}
def sid(key):  # clinfm's subject id of a FHIR Patient id (docs/FHIR.md)
    v = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=32).digest()[:8], "little") & (2**63 - 1)
    return str(v or 1)

# What no text value may contain, by kind: lower-case strings, or digit strings for phones and
# SSNs (compared with the digits of each run of digits and separators in the text). Birth dates
# are checked in each patient's own notes (below).
patients = [json.loads(l) for l in open(f"{data}/Patient.000.ndjson") if l.strip()]
kinds = {"name": set(), "street address": set(), "phone": set(), "ssn": set()}
for p in patients:
    for n in p.get("name", []):
        for part in n.get("given", []) + [n.get("family", "")]:
            if len(part) >= 3:
                kinds["name"].add(part.lower())
    for a in p.get("address", []):
        for line in a.get("line", []):
            kinds["street address"].add(line.lower())
            street = re.sub(r"^\d+\s+", "", line)  # the street without its house number
            if len(street) >= 6:
                kinds["street address"].add(street.lower())
    for t in p.get("telecom", []):
        if t.get("system") == "phone":
            kinds["phone"].add(re.sub(r"\D", "", t["value"]))
    for i in p.get("identifier", []):
        if any(c.get("code") == "SS" for c in i.get("type", {}).get("coding", [])):
            kinds["ssn"].add(re.sub(r"\D", "", i["value"]))
assert len(patients) == 13, len(patients)
assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
DIGIT_RUN = re.compile(r"\d[\d\s().\-/]*\d")

def read(path):
    """subject -> [(time, code, text)] of the text values, in file order."""
    out = collections.defaultdict(list)
    with open(f"{path}/data.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["text_value"]:
                out[r["subject_id"]].append((r["time"], r["code"], r["text_value"]))
    return out

def leaks(rows):
    """Per kind, how many text values hold a value of that kind."""
    found = {k: 0 for k in kinds}
    for _, code, t in rows:
        low = t.lower()
        runs = [re.sub(r"\D", "", r) for r in DIGIT_RUN.findall(t)]
        for k, values in kinds.items():
            if k in ("phone", "ssn"):
                hit = any(v in r for r in runs for v in values)
            else:
                hit = any(v in low for v in values)
            found[k] += hit
    return found

raw, out = read(f"{S}/raw"), read(f"{S}/deid")
all_raw = [x for v in raw.values() for x in v if x[1].startswith("NOTE")]
all_out = [x for v in out.values() for x in v]
want = sum(1 for l in open(f"{data}/DocumentReference.000.ndjson") if l.strip())
ok = True
# the raw notes do hold the identifiers: otherwise this test would prove nothing
before = leaks(all_raw)
print("notes holding an identifier before deid:", before)
need = kinds.keys() if which == "spiked" else ["name"]
for k in need:
    if before[k] < 0.9 * want:
        print(f"FAIL: the raw notes should hold the patients' {k}s"); ok = False
after = leaks(all_out)
print("text values holding an identifier after deid: ", after)
if any(after.values()):
    print("FAIL: identifiers left in de-identified text values"); ok = False
if any(c.startswith("PHI//") for _, c, _ in all_out):
    print("FAIL: PHI// events survived deid"); ok = False

# Birth dates, patient by patient. A pseudonymous subject is matched to its patient by its note
# times, which the date shift moves by one whole number of weeks. A shifted date may happen to
# fall on the real birth date; such a date is explained when the raw notes hold the date that
# was shifted onto it, so a birth date may appear at most as often as birth - shift did before.
def times(rows):
    return [datetime.datetime.fromisoformat(t) for t, c, _ in rows if c.startswith("NOTE")]
def count(rows, forms):
    return sum(t.lower().count(f) for _, _, t in rows for f in forms)
by_sid = {sid(p["id"]): p for p in patients}
matched, born_before, born_leaks = 0, 0, 0
for s_out, rows in out.items():
    t_out = times(rows)
    cands = []
    for s_raw, rrows in raw.items():
        t_raw = times(rrows)
        if len(t_raw) == len(t_out) and t_raw:
            d = {b - a for a, b in zip(t_raw, t_out)}
            if len(d) == 1 and next(iter(d)) % datetime.timedelta(days=7) == datetime.timedelta(0):
                cands.append((s_raw, next(iter(d))))
    if len(cands) != 1 or cands[0][0] not in by_sid:
        print(f"FAIL: a de-identified subject matches {len(cands)} original patients by note times"); ok = False
        continue
    s_raw, shift = cands[0]
    matched += 1
    birth = datetime.date.fromisoformat(by_sid[s_raw]["birthDate"])
    born_before += count(raw[s_raw], date_forms(birth))
    born_leaks += max(0, count(rows, date_forms(birth)) - count(raw[s_raw], date_forms(birth - shift)))
print(f"subjects matched to patients: {matched}; birth dates in notes before: {born_before}, left: {born_leaks}")
if which == "spiked" and born_before < 0.9 * want:
    print("FAIL: the spiked notes should hold birth dates"); ok = False
if matched != len(patients) or born_leaks:
    print("FAIL: birth dates left in the patients' notes"); ok = False

notes = [t for _, c, t in all_out if c.startswith("NOTE")]
print(f"text values after deid: {len(all_out)}, notes: {len(notes)} (want {want}), "
      f"non-empty: {sum(1 for t in notes if t.strip())}")
if len(notes) != want or len(all_out) != want:
    print("FAIL: notes lost, or text values other than notes left"); ok = False
if sum(1 for t in notes if len(t.strip()) > 100) < 0.95 * want:
    print("FAIL: most notes should still hold text"); ok = False
for word in ("patient", "history", "medications", "allergies", "plan"):
    n = sum(1 for t in notes if word in t.lower())
    if n < 0.9 * want:
        print(f"FAIL: only {n} notes still contain the word '{word}'"); ok = False
rep = json.load(open(f"{S}/report.json"))
removed = rep["removed"]["identifier_events_by_kind"]
print("identifier events removed by kind:", removed)
for k in ("NAME", "PHONE", "SSN", "ADDRESS"):
    if not removed.get(k):
        print(f"FAIL: no {k} identifier events reached deid"); ok = False
spans = rep["removed"]["text_spans_by_kind"]
print("text spans replaced by kind:", spans)
if spans.get("NAME", 0) < want or spans.get("DATE", 0) < want:
    print("FAIL: every note names its patient and starts with its date: want a NAME and a DATE "
          "span in each"); ok = False
sys.exit(0 if ok else 1)
PY
done
exit $fail
