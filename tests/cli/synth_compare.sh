#!/usr/bin/env bash
# `clinfm synth --compare`: the realism report, on generated data only (no data directory needed).
# - a store beside itself: every measure equal on both sides, nothing flagged;
# - its figures recomputed here in Python from the files the store was made of (sex, stays,
#   in-hospital deaths, intensive care, length of stay), independently of clinfm's code;
# - a population made different on purpose (sepsis and pneumonia stays 20 times deadlier, in an
#   edited module folder) is flagged on in-hospital deaths, with the numbers, in text and JSON;
# - without --generated it generates in the real store's layout (FHIR here) and ingests it;
# - usage errors.
set -euo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
export TMPDIR=$T
"$CLINFM" synth --patients 600 --seed 3 --start 2012 --end 2021 --truth-paths 0 --quiet --out "$T/a"
"$CLINFM" ingest --format fhir --input "$T/a/fhir" --out "$T/a.store" --quiet
mkdir -p "$T/mods" && cp data/synth/modules/*.module "$T/mods/"
sed -i 's/^death_per_day = \([0-9.]*\).*/death_per_day = 0.1/' "$T/mods/sepsis.module" "$T/mods/pneumonia.module"
"$CLINFM" synth --patients 600 --seed 3 --start 2012 --end 2021 --truth-paths 0 --quiet --modules "$T/mods" --out "$T/b"
"$CLINFM" ingest --format fhir --input "$T/b/fhir" --out "$T/b.store" --quiet

"$CLINFM" synth --compare "$T/a.store" --generated "$T/a.store" --json > "$T/same.json"
"$CLINFM" synth --compare "$T/a.store" --generated "$T/b.store" --json > "$T/diff.json"
"$CLINFM" synth --compare "$T/a.store" --generated "$T/b.store" > "$T/diff.txt"
"$CLINFM" synth --compare "$T/a.store" --patients 300 --seed 9 --json > "$T/gen.json"

/usr/bin/python3 - "$T" <<'PY'
import json, sys, datetime
T = sys.argv[1]
same = json.load(open(f"{T}/same.json"))
assert same["differences"] == [], same["differences"]
for m in same["measures"]:
    assert m["generated"] == m["real"], m
for q in same["distributions"] + same["values"]:
    assert q["generated"] == q["real"], q
assert all(c["generated"] == c["real"] for c in same["codes"]["top"])
assert same["codes"]["real_events_with_a_shared_code"] == 1
# the real side's figures, from the FHIR files the store was read from
pats = [json.loads(l) for l in open(f"{T}/a/fhir/Patient.000.ndjson")]
enc = [json.loads(l) for l in open(f"{T}/a/fhir/Encounter.000.ndjson")]
proc = [json.loads(l) for l in open(f"{T}/a/fhir/Procedure.000.ndjson")]
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
stays = [e for e in enc if e["class"]["code"] == "IMP"]
died = sum(e.get("hospitalization", {}).get("dischargeDisposition", {}).get("coding", [{}])[0].get("code") == "exp" for e in stays)
icu = {p["encounter"]["reference"].split("/")[1] for p in proc if p["code"]["coding"][0]["code"] == "305351004"}
los = sorted((ts(e["period"]["end"]) - ts(e["period"]["start"])).total_seconds() / 86400 for e in stays)
m = {x["name"]: x["real"] for x in same["measures"]}
want = {"male share": sum(p["gender"] == "male" for p in pats) / len(pats),
        "in-hospital deaths per admission": died / len(stays),
        "intensive care per admission": sum(e["id"] in icu for e in stays) / len(stays)}
for k, v in want.items():
    assert abs(m[k] - v) < 1e-9, (k, m[k], v)
d = {x["name"]: x["real"] for x in same["distributions"]}
assert abs(d["length of stay (days)"][1] - los[len(los) // 2]) < 1e-6, (d["length of stay (days)"], los[len(los) // 2])
assert same["real"]["patients"] == len(pats) and len(stays) > 50, len(stays)
print(f"{len(pats)} patients, {len(stays)} stays, {died} in-hospital deaths: the report's figures recomputed")
# deadlier infections: flagged, with both numbers
diff = json.load(open(f"{T}/diff.json"))
x = next(x for x in diff["measures"] if x["name"] == "in-hospital deaths per admission")
assert x["differs"] and x["generated"] > 1.3 * x["real"], x
assert any(l.startswith("in-hospital deaths per admission:") for l in diff["differences"]), diff["differences"]
gen = json.load(open(f"{T}/gen.json"))
assert gen["generated"]["layout"] == "fhir-ndjson" and gen["generated"]["patients"] == 300, gen["generated"]
assert gen["real"]["patients"] == len(pats)
PY
grep -q "in-hospital deaths per admission: .* generated, .* real (x" "$T/diff.txt"
grep -q "where they differ" "$T/diff.txt"
[ -z "$(ls "$T" | grep clinfm-compare)" ] || { echo "a temporary folder was left behind"; exit 1; }

# errors
if "$CLINFM" synth --compare "$T/nothere.store" 2> "$T/e1"; then echo "missing store accepted"; exit 1; fi
grep -q "nothere.store" "$T/e1"
if "$CLINFM" synth --compare "$T/a.store" --out "$T/x" 2> /dev/null; then echo "--out accepted with --compare"; exit 1; fi
if "$CLINFM" synth --generated "$T/a.store" --patients 3 --out "$T/x" 2> /dev/null; then echo "--generated without --compare"; exit 1; fi
echo ok
