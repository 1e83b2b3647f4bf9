#!/usr/bin/env bash
# The bundled MIMIC-IV demo through mappings/mimic-iv.map: 100 subjects and 275 admissions, and
# every row of every mapped table is accounted for (events + filtered + rejected == rows), with
# the expected counts computed here, independently, from the source tables by Python's csv module;
# event times follow the mapping's timing rules (store times for results, dates at the end of
# their day), recomputed here from the source columns.
set -euo pipefail
. tests/cli/lib.sh
need_data MIMIC mimic-iv-demo
need_data TERMINOLOGY terminology
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m.store" \
  --report "$T/report.json" --quiet
"$CLINFM" inspect "$T/m.store" --json --verify > "$T/inspect.json"
# The same input gives the same bytes, whatever the memory budget (here: many spilled runs).
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m2.store" \
  --memory-mb 1 --quiet
cmp "$T/m.store" "$T/m2.store" || { echo "store differs with --memory-mb 1"; exit 1; }
"$CLINFM" export --format meds-csv "$T/m.store" --out "$T/meds" > /dev/null
/usr/bin/python3 - "$T" <<'PY'
import csv, gzip, json, os, sys
T = sys.argv[1]
def rows(path):
    with gzip.open(os.environ["MIMIC"] + "/" + path, "rt", newline="") as f:
        return list(csv.DictReader(f))
fails = []
def check(what, got, want):
    if got != want:
        if isinstance(got, dict):  # multisets: name a few differences, not thousands
            got, want = dict(list((got - want).items())[:3]), dict(list((want - got).items())[:3])
        fails.append(f"{what}: got {got}, want {want}")
ins = json.load(open(f"{T}/inspect.json"))
patients = rows("hosp/patients.csv.gz")
admissions = rows("hosp/admissions.csv.gz")
check("subjects", ins["subjects"], len({r["subject_id"] for r in patients}))
check("subjects == 100", ins["subjects"], 100)
# Admissions: one HOSPITAL_ADMISSION event per admissions row, in the exported MEDS CSV.
with open(f"{T}/meds/data.csv", newline="") as f:
    data = list(csv.DictReader(f))
check("events in export", len(data), ins["events"])
adm = [r for r in data if r["code"].startswith("HOSPITAL_ADMISSION//")]
check("admissions", len(adm), len(admissions))
check("admissions == 275", len(adm), 275)
check("distinct hadm admit times", len({(r["subject_id"], r["time"]) for r in adm}),
      len({(r["subject_id"], r["admittime"]) for r in admissions}))
# Every row of every table is events, filtered or rejected; event counts match the mapping.
rep = json.load(open(f"{T}/report.json"))
src = {s["source"]: s for s in rep["sources"]}
files = {"patients": "hosp/patients.csv.gz", "admissions": "hosp/admissions.csv.gz",
         "transfers": "hosp/transfers.csv.gz", "icustays": "icu/icustays.csv.gz",
         "diagnoses_icd": "hosp/diagnoses_icd.csv.gz", "procedures_icd": "hosp/procedures_icd.csv.gz",
         "drgcodes": "hosp/drgcodes.csv.gz", "hcpcsevents": "hosp/hcpcsevents.csv.gz",
         "services": "hosp/services.csv.gz", "labevents": "hosp/labevents.csv.gz",
         "prescriptions": "hosp/prescriptions.csv.gz", "emar": "hosp/emar.csv.gz",
         "microbiologyevents": "hosp/microbiologyevents.csv.gz", "omr": "hosp/omr.csv.gz"}
tables = {name: rows(path) for name, path in files.items()}
for name, tr in tables.items():
    s = src.get(name)
    if s is None:
        fails.append(f"{name}: missing from report"); continue
    check(f"{name} rows", s["rows"], len(tr))
    check(f"{name} accounted", s["rows_with_events"] + s["rows_filtered"] + s["rows_rejected"], len(tr))
nonempty = lambda tr, c: sum(1 for r in tr if r[c] != "")
a = admissions
want_events = {
    "patients": 2 * len(patients) + nonempty(patients, "dod"),
    "admissions": 4 * len(a) + nonempty(a, "marital_status") + nonempty(a, "language")
                  + nonempty(a, "edregtime") + nonempty(a, "edouttime") + nonempty(a, "deathtime"),
    "transfers": len(tables["transfers"]),
    "icustays": 2 * len(tables["icustays"]),
    "diagnoses_icd": len(tables["diagnoses_icd"]),
    "procedures_icd": len(tables["procedures_icd"]),
    "labevents": len(tables["labevents"]),
    "prescriptions": nonempty(tables["prescriptions"], "starttime") + nonempty(tables["prescriptions"], "stoptime"),
    "emar": nonempty(tables["emar"], "charttime"),
    "omr": len(tables["omr"]) + sum(1 for r in tables["omr"] if r["result_name"].startswith("Blood Pressure")),
}
for name, want in want_events.items():
    check(f"{name} events", src[name]["events"], want)
check("rejections", sum(r["count"] for r in rep["rejections"]), 0)
# Diagnoses sit at discharge time, never at admission.
dis = {(r["subject_id"], r["hadm_id"]): r["dischtime"].replace(" ", "T") for r in admissions}
dx = sorted({r["time"] for r in data if r["code"].startswith("DIAGNOSIS//")})
check("diagnosis times are discharge times", set(dx) <= set(dis.values()), True)
# ICD-9 codes that GEMs maps are stored as ICD-10.
gem = {}
with gzip.open(os.environ["TERMINOLOGY"] + "/icd_cm_9_to_10_mapping.csv.gz", "rt") as f:
    for r in csv.DictReader(f):
        gem.setdefault(r["icd_9"], r["icd_10"])
want9 = sum(1 for r in tables["diagnoses_icd"] if r["icd_version"] == "9" and r["icd_code"] not in gem)
check("unmapped ICD-9 diagnoses", sum(1 for r in data if r["code"].startswith("DIAGNOSIS//ICD//9//")), want9)
# Times say when a fact was known (docs/MAPPING.md): results at their store time, date-only facts
# at the end of their day, billing codes no later than the stay's discharge.
from collections import Counter
from datetime import datetime
iso = lambda s: s.replace(" ", "T")
eod = lambda d: d + "T23:59:59"
times = lambda prefix: Counter((r["subject_id"], r["time"]) for r in data if r["code"].startswith(prefix))
lab = tables["labevents"]
check("lab times are store times", times("LAB//"),
      Counter((r["subject_id"], iso(r["storetime"] or r["charttime"])) for r in lab))
check("labs timed at the specimen (no store time)", sum(1 for r in lab if not r["storetime"]) < len(lab) // 50, True)
micro = tables["microbiologyevents"]
def micro_time(r):
    if r["storetime"]: return iso(r["storetime"])
    if r["storedate"]: return eod(r["storedate"][:10])
    return iso(r["charttime"]) if r["charttime"] else eod(r["chartdate"][:10])
check("microbiology times are store times", times("MICROBIOLOGY"), Counter((r["subject_id"], micro_time(r)) for r in micro))
disch = {r["hadm_id"]: iso(r["dischtime"]) for r in admissions}
hc = tables["hcpcsevents"]
check("HCPCS at the end of the day, not after discharge", times("HCPCS//"),
      Counter((r["subject_id"], min(eod(r["chartdate"][:10]), disch[r["hadm_id"]])) for r in hc))
check("dates of death at the end of the day", times("MEDS_DEATH"),
      Counter((r["subject_id"], eod(r["dod"])) for r in patients if r["dod"]))
check("OMR at the end of the day", times("OMR//"),
      Counter((r["subject_id"], eod(r["chartdate"])) for r in tables["omr"]
              for _ in range(2 if r["result_name"].startswith("Blood Pressure") else 1)))
if fails:
    print("\n".join(fails)); sys.exit(1)
print("mimic ingest checks passed")
PY
