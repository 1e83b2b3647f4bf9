#!/usr/bin/env bash
# Realism report for `clinfm synth` (issue 16): a generated population set beside the real-shaped
# stores clinfm is developed on (the Synthea R4 bundles and the MIMIC-IV demo, read in place from
# $CLINFM_DATA), on age and sex, events per patient, how many patients carry each of the modules'
# diagnoses, lab and vital distributions (quantiles of the same LOINC codes in Synthea; of the
# MIMIC-IV lab items for the same tests), admissions, length of stay and in-hospital deaths.
# Each line says where the generated population differs (relative difference over 30%, or
# medians apart by more than a quarter of the reference's interquartile range). Not a test: the
# sets differ by design (Synthea's lifetimes, MIMIC's ICU patients); read it as a description.
# Usage: bash bench/synth_realism.sh [BUILD_DIR] [PATIENTS]   (default build, 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${1:-build}
N=${2:-3000}
BIN=$BUILD/clinfm
SYN=$(bench_data synthea-fhir-r4)
MIMIC=$(bench_data mimic-iv-demo)
TMP=$(mktemp -d /tmp/clinfm-synth-realism.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
"$BIN" synth --patients "$N" --seed 1 --truth-paths 0 --out "$TMP/gen" --quiet
"$BIN" ingest --format fhir --input "$TMP/gen/fhir" --out "$TMP/gen.store" --quiet
"$BIN" ingest --format fhir --input "$SYN" --out "$TMP/syn.store" --quiet
CLINFM_DATA=$(cd "$(dirname "$MIMIC")" && pwd) "$BIN" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" \
  --out "$TMP/mim.store" --quiet --tables patients,admissions,icustays,labevents,diagnoses_icd
for s in gen syn mim; do "$BIN" export --format meds-csv "$TMP/$s.store" --out "$TMP/$s.meds" > /dev/null; done
/usr/bin/python3 - "$TMP" "$N" <<'PY'
import csv, sys, statistics as st, collections, datetime
T, N = sys.argv[1], int(sys.argv[2])
def load(name):
    subj = collections.defaultdict(list)
    with open(f"{T}/{name}.meds/data.csv", newline="") as f:
        for r in csv.DictReader(f):
            subj[r["subject_id"]].append((r["time"], r["code"], r["numeric_value"]))
    return subj
def ts(t): return datetime.datetime.fromisoformat(t[:19]) if t else None
def q(v, p): v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
sets = {"generated": load("gen"), "synthea": load("syn"), "mimic-demo": load("mim")}
def describe(name, s):
    d = {"patients": len(s), "events_pp": [], "age": [], "male": 0, "dx": collections.Counter(), "labs": collections.defaultdict(list),
         "adm": 0, "years": 0.0, "los": [], "deaths_in_hosp": 0}
    for sid, ev in s.items():
        d["events_pp"].append(len(ev))
        codes = [c for _, c, _ in ev]
        if "GENDER//M" in codes: d["male"] += 1
        birth = [ts(t) for t, c, _ in ev if c == "MEDS_BIRTH" and t]
        timed = sorted(ts(t) for t, c, _ in ev if t and c != "MEDS_BIRTH")
        if birth and timed: d["age"].append((timed[0] - birth[0]).days / 365.25)
        if timed: d["years"] += max((timed[-1] - timed[0]).days / 365.25, 1 / 12)
        have = set()
        starts = {}
        for t, c, v in ev:
            for key, pats in DX.items():
                if any(c.startswith(p) for p in pats): have.add(key)
            for key, pats in LABS.items():
                if any(c.startswith(p) for p in pats) and v:
                    d["labs"][key].append(float(v))
            if c.startswith("ENCOUNTER_START//IMP") or c.startswith("HOSPITAL_ADMISSION//"):
                d["adm"] += 1
        for key in have: d["dx"][key] += 1
        # stays: IMP start..end (FHIR) or admission..discharge (MIMIC), paired in order
        a = sorted(ts(t) for t, c, _ in ev if t and (c.startswith("ENCOUNTER_START//IMP") or c.startswith("HOSPITAL_ADMISSION//")))
        b = sorted(ts(t) for t, c, _ in ev if t and (c.startswith("ENCOUNTER_END//IMP") or c.startswith("HOSPITAL_DISCHARGE//")))
        for x, y in zip(a, b): d["los"].append((y - x).total_seconds() / 86400)
        if any(c == "HOSPITAL_DISCHARGE//DIED" for c in codes): d["deaths_in_hosp"] += 1
        dt = [ts(t) for t, c, _ in ev if c == "MEDS_DEATH" and t]
        if dt and any(x <= dt[0] <= y + datetime.timedelta(hours=1) for x, y in zip(a, b)) and not name.startswith("mimic"):
            d["deaths_in_hosp"] += 1
    return d
DX = {"hypertension": ["SNOMED//59621000", "SNOMED//38341003", "DIAGNOSIS//ICD//10//I10", "DIAGNOSIS//ICD//9//401"],
      "type 2 diabetes": ["SNOMED//44054006", "DIAGNOSIS//ICD//10//E11", "DIAGNOSIS//ICD//9//250"],
      "CKD": ["SNOMED//4331", "SNOMED//4318", "SNOMED//709044004", "SNOMED//46177005", "DIAGNOSIS//ICD//10//N18", "DIAGNOSIS//ICD//9//585"],
      "heart failure": ["SNOMED//88805009", "SNOMED//84114007", "SNOMED//42343007", "DIAGNOSIS//ICD//10//I50", "DIAGNOSIS//ICD//9//428"],
      "COPD": ["SNOMED//13645005", "SNOMED//185086009", "DIAGNOSIS//ICD//10//J44", "DIAGNOSIS//ICD//9//496"],
      "atrial fibrillation": ["SNOMED//49436004", "DIAGNOSIS//ICD//10//I48", "DIAGNOSIS//ICD//9//42731"],
      "myocardial infarction": ["SNOMED//22298006", "SNOMED//399211009", "DIAGNOSIS//ICD//10//I21", "DIAGNOSIS//ICD//9//410"],
      "stroke": ["SNOMED//230690007", "DIAGNOSIS//ICD//10//I63", "DIAGNOSIS//ICD//9//434"],
      "pneumonia": ["SNOMED//233604007", "DIAGNOSIS//ICD//10//J18", "DIAGNOSIS//ICD//9//486"],
      "sepsis": ["SNOMED//91302008", "DIAGNOSIS//ICD//10//A41", "DIAGNOSIS//ICD//9//038"]}
LABS = {"systolic BP": ["LOINC//8480-6"], "BMI": ["LOINC//39156-5"], "HbA1c %": ["LOINC//4548-4", "LAB//50852//"],
        "glucose mg/dL": ["LOINC//2339-0", "LOINC//2345-7", "LAB//50931//"], "creatinine mg/dL": ["LOINC//38483-4", "LOINC//2160-0", "LAB//50912//"],
        "eGFR": ["LOINC//33914-3"], "sodium": ["LOINC//2947-0", "LOINC//2951-2", "LAB//50983//"],
        "potassium": ["LOINC//6298-4", "LOINC//2823-3", "LAB//50971//"], "heart rate": ["LOINC//8867-4"],
        "hemoglobin g/dL": ["LOINC//718-7", "LAB//51222//"], "leukocytes": ["LOINC//6690-2", "LAB//51301//"]}
D = {k: describe(k, v) for k, v in sets.items()}
names = list(D)
def flag(g, r, iqr=None):
    if r != r or g != g: return ""
    if iqr: return "  <- differs" if abs(g - r) > 0.25 * iqr else ""
    return "  <- differs" if r and abs(g - r) / abs(r) > 0.3 else ""
print(f"{'':32s}" + "".join(f"{n:>22s}" for n in names))
def row(label, vals, fl=""):
    print(f"{label:32s}" + "".join(f"{v:>22s}" for v in vals) + fl)
row("patients", [str(D[n]["patients"]) for n in names])
row("male share", [f"{D[n]['male'] / D[n]['patients']:.2f}" for n in names], flag(D["generated"]["male"] / N, D["synthea"]["male"] / D["synthea"]["patients"]))
row("age at record start, median", [f"{q(D[n]['age'], .5):.0f} ({q(D[n]['age'], .1):.0f}-{q(D[n]['age'], .9):.0f})" for n in names])
row("events per patient, median", [f"{q(D[n]['events_pp'], .5):.0f} (p90 {q(D[n]['events_pp'], .9):.0f})" for n in names],
    flag(q(D["generated"]["events_pp"], .5), q(D["synthea"]["events_pp"], .5)))
row("record years per patient, mean", [f"{D[n]['years'] / D[n]['patients']:.1f}" for n in names])
print("patients with the diagnosis (share):")
for k in DX:
    vals = [D[n]["dx"][k] / D[n]["patients"] for n in names]
    row("  " + k, [f"{v:.3f}" for v in vals], flag(vals[0], vals[1]) + (" (vs synthea)" if flag(vals[0], vals[1]) else ""))
print("values (median [p10-p90]); flagged when the medians are apart by > 1/4 of Synthea's IQR:")
for k in LABS:
    vals = [D[n]["labs"].get(k, []) for n in names]
    cells = [f"{q(v, .5):.1f} [{q(v, .1):.1f}-{q(v, .9):.1f}]" if v else "-" for v in vals]
    ref = vals[1] if vals[1] else vals[2]
    fl = flag(q(vals[0], .5), q(ref, .5), (q(ref, .75) - q(ref, .25)) or 1) if vals[0] and ref else ""
    row("  " + k, cells, fl)
print("hospital:")
row("  admissions per 100 patient-yrs", [f"{100 * D[n]['adm'] / max(D[n]['years'], 1e-9):.1f}" for n in names])
row("  length of stay, median days", [f"{q(D[n]['los'], .5):.1f} (p90 {q(D[n]['los'], .9):.1f})" if D[n]["los"] else "-" for n in names],
    flag(q(D["generated"]["los"], .5), q(D["mimic-demo"]["los"], .5)) + " (vs MIMIC)")
row("  in-hospital deaths per admission", [f"{D[n]['deaths_in_hosp'] / max(D[n]['adm'], 1):.3f}" for n in names])
print("notes: Synthea simulates whole lifetimes (its record years are decades) and MIMIC-IV holds hospital and ICU patients, so")
print("neither is a general population; 'differs' marks what to look at, not a fault by itself.")
PY
