#!/usr/bin/env bash
# `clinfm synth` end to end, on generated data only (no data directory needed):
# - the FHIR output ingests with 0 rejections, and the store's rows and events per resource type
#   are those the generator's manifest reports;
# - every label row of a new-onset task and of the four FHIR hospital tasks joins a truth row
#   (fhir_id through the same subject-id hash as ingestion, the prediction time to the second),
#   and the truth's realised outcome is the label; computed here in Python, independently of
#   clinfm's join;
# - `clinfm eval --ceiling` puts the ceiling row on the report, with the highest AUROC;
# - through `clinfm deid`, the ceiling joins again with --ceiling-key, and without the key it
#   stops with a message naming the missing subject (no value);
# - bad module files, an existing output folder and bad options are clear errors.
set -euo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" synth --patients 700 --seed 4 --start 2012 --end 2021 --threads 2 --truth-paths 4 --out "$T/syn" > "$T/synth.txt"
grep -q "700 patients" "$T/synth.txt"
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/s.store" --report "$T/rep.json" --strict --quiet

/usr/bin/python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]
man = json.load(open(f"{T}/syn/manifest.json"))
rep = json.load(open(f"{T}/rep.json"))
src = {s["name"] if "name" in s else s["source"]: s for s in rep["sources"]}
fails = []
for typ, n in man["resources"].items():
    if n == 0 and typ not in src: continue
    s = src.get(typ)
    if not s: fails.append(f"{typ}: not in the ingest report"); continue
    if s["rows"] != n: fails.append(f"{typ}: {s['rows']} rows ingested, manifest says {n}")
    if s["rows_rejected"] != 0: fails.append(f"{typ}: {s['rows_rejected']} rejected")
    ev = man["events_by_type"][typ]
    if typ == "Patient":
        # identifier (PHI//) events come on top: at least name, family name, phone, address, city, ZIP, state, MRN, SSN
        if s["events"] < ev + 9 * n: fails.append(f"Patient: {s['events']} events, expected at least {ev + 9 * n}")
    elif s["events"] != ev: fails.append(f"{typ}: {s['events']} events, manifest says {ev}")
if fails: print("\n".join(fails)); sys.exit(1)
PY

task=new_onset_hypertension
for t in $task in_hospital_mortality_fhir readmission_30d_fhir icu_admission_fhir long_stay_7d_fhir; do
  "$CLINFM" label --task tasks/$t.task --store "$T/s.store" --out "$T/labels_$t.csv" --quiet
done
/usr/bin/python3 - "$T" $task in_hospital_mortality_fhir readmission_30d_fhir icu_admission_fhir long_stay_7d_fhir <<'PY'
import csv, hashlib, sys
T, tasks = sys.argv[1], sys.argv[2:]
def sid(key):  # docs/FHIR.md: BLAKE2b-256 of the Patient id, first 8 bytes little-endian, 63 bits
    v = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=32).digest()[:8], "little") & ((1 << 63) - 1)
    return v or 1
for task in tasks:
    truth = {(sid(r["fhir_id"]), r["prediction_time"].rstrip("Z")): r for r in csv.DictReader(open(f"{T}/syn/truth/{task}.csv"))}
    rows = list(csv.DictReader(open(f"{T}/labels_{task}.csv")))
    assert len(rows) > (500 if task.startswith("new_onset") else 50), (task, len(rows))
    miss = [r for r in rows if (int(r["subject_id"]), r["prediction_time"]) not in truth]
    assert not miss, f"{task}: {len(miss)} label rows without a truth row"
    bad = [r for r in rows if truth[(int(r["subject_id"]), r["prediction_time"])]["outcome"] != ("1" if r["boolean_value"] == "true" else "0")]
    assert not bad, f"{task}: {len(bad)} label rows whose label is not the truth's outcome"
    pos = sum(r["boolean_value"] == "true" for r in rows)
    assert pos >= (20 if task.startswith("new_onset") else 2), (task, pos)
    print(f"{task}: {len(rows)} label rows joined, {pos} positive")
PY

# held-out gets most patients so the AUROCs rest on some positives
"$CLINFM" eval --task tasks/$task.task --store "$T/s.store" --out "$T/ev" --split-fractions 40/10/50 --bootstrap 0 \
  --baselines logreg,xgboost --ceiling "$T/syn/truth/$task.csv" --quiet
/usr/bin/python3 - "$T/ev/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
au = {p["name"]: p["held_out"]["auroc"]["value"] for p in m["predictors"]}
print(au)
assert set(au) >= {"logreg", "xgboost", "ceiling"}, au
assert au["ceiling"] > max(v for k, v in au.items() if k != "ceiling"), au
PY
grep -q "ceiling" "$T/ev/report.html"

# de-identified: the ceiling follows the subjects through the key
"$CLINFM" keygen --out "$T/k.key" > /dev/null
"$CLINFM" deid "$T/s.store" --out "$T/d.store" --key "$T/k.key" > /dev/null 2>&1
"$CLINFM" eval --task tasks/$task.task --store "$T/d.store" --out "$T/evd" --split-fractions 40/10/50 --bootstrap 0 \
  --baselines logreg --ceiling "$T/syn/truth/$task.csv" --ceiling-key "$T/k.key" --quiet
/usr/bin/python3 - "$T/evd/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
au = {p["name"]: p["held_out"]["auroc"]["value"] for p in m["predictors"]}
assert au["ceiling"] > au["logreg"], au
PY
if "$CLINFM" eval --task tasks/$task.task --store "$T/d.store" --out "$T/evx" --bootstrap 0 --baselines logreg \
     --ceiling "$T/syn/truth/$task.csv" --quiet 2> "$T/nokey.err"; then echo "ceiling without the key should fail"; exit 1; fi
grep -q "no ground truth for subject" "$T/nokey.err"

# errors
mkdir -p "$T/mods" && cp data/synth/modules/*.module "$T/mods/" && sed -i 's/^screen = 0.9 /screen = 2 /' "$T/mods/hypertension.module"
if "$CLINFM" synth --patients 5 --out "$T/bad" --modules "$T/mods" 2> "$T/mod.err"; then echo "bad module accepted"; exit 1; fi
grep -q "hypertension.module:[0-9]*: 'screen' must be a number from 0 to 1" "$T/mod.err"
[ ! -e "$T/bad" ] && ! ls "$T" | grep -q partial
if "$CLINFM" synth --patients 5 --out "$T/syn" 2> "$T/exists.err"; then echo "overwrote"; exit 1; fi
grep -q "already exists" "$T/exists.err"
if "$CLINFM" synth --patients 5 --out "$T/x" --format csv 2> /dev/null; then echo "bad format accepted"; exit 1; fi
if "$CLINFM" synth --out "$T/x" 2> /dev/null; then echo "missing --patients accepted"; exit 1; fi
echo ok
