#!/usr/bin/env bash
# `clinfm synth --format mimic-csv|omop-csv`: the same population as MIMIC-IV and OMOP CDM tables.
# - each layout ingests with its shipped mapping and --strict (0 rejections), and the store's rows
#   and events per table are the ones the generator's manifest reports;
# - the tables are the same bytes for 1 and 2 threads, and both layouts hold the same patients,
#   stays and deaths as the FHIR output of the same seed (counted here from the files);
# - every label row of the layout's tasks (MIMIC: the four hospital tasks; OMOP: the new-onset and
#   *_fhir tasks) joins a truth row on (subject_id, prediction_time), and its label is the truth's
#   outcome (joined here in Python, independently of clinfm's join); `eval --ceiling` joins too;
# - results are timed as MIMIC records them: every lab's storetime after its charttime, cultures
#   resulted days later, outpatient measures dated only.
# The MIMIC mapping maps ICD-9 codes through the CMS GEMs of the data directory, so it needs it.
set -euo pipefail
. tests/cli/lib.sh
need_data TERM terminology
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
args=(--patients 400 --seed 7 --start 2013 --end 2020 --truth-paths 2 --quiet)
"$CLINFM" synth "${args[@]}" --format mimic-csv --threads 2 --out "$T/m2"
"$CLINFM" synth "${args[@]}" --format mimic-csv --threads 1 --out "$T/m1"
"$CLINFM" synth "${args[@]}" --format omop-csv --threads 2 --out "$T/o2"
"$CLINFM" synth "${args[@]}" --format omop-csv --threads 1 --out "$T/o1"
"$CLINFM" synth "${args[@]}" --format fhir-ndjson --truth-paths 0 --out "$T/f"
for d in m o; do
  (cd "$T/${d}1" && find . -type f ! -name manifest.json | sort | xargs sha256sum) > "$T/$d.1.sum"
  (cd "$T/${d}2" && find . -type f ! -name manifest.json | sort | xargs sha256sum) > "$T/$d.2.sum"
  cmp "$T/$d.1.sum" "$T/$d.2.sum" || { echo "$d: files differ between 1 and 2 threads"; exit 1; }
done
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$T/m2" --out "$T/m.store" --report "$T/m.json" --strict --quiet
"$CLINFM" ingest --mapping mappings/omop-cdm.map --input "$T/o2" --out "$T/o.store" --report "$T/o.json" --strict --quiet

mimic_tasks="in_hospital_mortality readmission_30d icu_admission long_stay_7d"
omop_tasks="new_onset_hypertension new_onset_t2d in_hospital_mortality_fhir readmission_30d_fhir icu_admission_fhir long_stay_7d_fhir"
for t in $mimic_tasks; do "$CLINFM" label --task tasks/$t.task --store "$T/m.store" --out "$T/lm_$t.csv" --quiet; done
for t in $omop_tasks; do "$CLINFM" label --task tasks/$t.task --store "$T/o.store" --out "$T/lo_$t.csv" --quiet; done

/usr/bin/python3 - "$T" "$mimic_tasks" "$omop_tasks" <<'PY'
import csv, gzip, json, sys, datetime
T, mimic_tasks, omop_tasks = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
fails = []
# rows and events per table: the manifest against the ingest report
for d, rep in (("m2", "m.json"), ("o2", "o.json")):
    man = json.load(open(f"{T}/{d}/manifest.json"))
    src = {s["source"]: s for s in json.load(open(f"{T}/{rep}"))["sources"]}
    for t in man["tables"]:
        if t.get("dictionary") or t.get("unmapped"): continue
        s = src.get(t["name"])
        if s is None: fails.append(f"{d} {t['name']}: not in the ingest report"); continue
        if (s["rows"], s["events"], s["rows_rejected"]) != (t["rows"], t["events"], 0):
            fails.append(f"{d} {t['name']}: ingested rows/events/rejected {s['rows']}/{s['events']}/{s['rows_rejected']}, manifest {t['rows']}/{t['events']}/0")
    assert sum(t["events"] for t in man["tables"] if "events" in t) == man["events"]
    assert man["events"] > 20000, man["events"]
# the same population in every layout: patients, inpatient stays, deaths (from the files themselves)
def rows(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", newline="") as f: return list(csv.DictReader(f))
fhir = {t: sum(1 for _ in open(f"{T}/f/fhir/{t}.000.ndjson")) for t in ("Patient",)}
enc = [json.loads(l) for l in open(f"{T}/f/fhir/Encounter.000.ndjson")]
f_stays = sum(e["class"]["code"] == "IMP" for e in enc)
f_deaths = sum("deceasedDateTime" in json.loads(l) for l in open(f"{T}/f/fhir/Patient.000.ndjson"))
pat, adm = rows(f"{T}/m2/hosp/patients.csv.gz"), rows(f"{T}/m2/hosp/admissions.csv.gz")
per, vis, dth = rows(f"{T}/o2/PERSON.csv.gz"), rows(f"{T}/o2/VISIT_OCCURRENCE.csv.gz"), rows(f"{T}/o2/DEATH.csv")
got = {"patients": (fhir["Patient"], len(pat), len(per)),
       "stays": (f_stays, len(adm), sum(v["visit_concept_id"] == "9201" for v in vis)),
       "deaths": (f_deaths, sum(p["dod"] != "" for p in pat), len(dth)),
       "in-hospital deaths": (sum(e.get("hospitalization", {}).get("dischargeDisposition", {}).get("coding", [{}])[0].get("code") == "exp" for e in enc),
                              sum(a["hospital_expire_flag"] == "1" for a in adm),
                              sum(v["discharge_to_source_value"] == "expired" for v in vis))}
for k, v in got.items():
    if len(set(v)) != 1: fails.append(f"{k}: FHIR, MIMIC, OMOP = {v}")
print("same population:", got)
# MIMIC's clerical times
ts = lambda s: datetime.datetime.fromisoformat(s)
lab = rows(f"{T}/m2/hosp/labevents.csv.gz")
if not all(ts(r["storetime"]) > ts(r["charttime"]) for r in lab): fails.append("a lab stored before its specimen")
if not any(r["hadm_id"] == "" for r in lab) or not any(r["hadm_id"] != "" for r in lab): fails.append("labs: outpatient and inpatient both expected")
mic = rows(f"{T}/m2/hosp/microbiologyevents.csv.gz")
if not mic or not all(ts(r["storetime"]) - ts(r["charttime"]) > datetime.timedelta(days=1) for r in mic): fails.append("cultures: resulted days later")
omr = rows(f"{T}/m2/hosp/omr.csv.gz")
if not omr or any(len(r["chartdate"]) != 10 for r in omr): fails.append("omr: dates only")
if fails: print("\n".join(fails)); sys.exit(1)
# every label row joins its truth row, with the truth's outcome
for store, tasks, d in (("m", mimic_tasks, "m2"), ("o", omop_tasks, "o2")):
    for task in tasks:
        truth = {(int(r["subject_id"]), r["prediction_time"].rstrip("Z")): r for r in csv.DictReader(open(f"{T}/{d}/truth/{task}.csv"))}
        lab = list(csv.DictReader(open(f"{T}/l{store}_{task}.csv")))
        assert len(lab) > (300 if task.startswith("new_onset") else 20), (store, task, len(lab))
        miss = [r for r in lab if (int(r["subject_id"]), r["prediction_time"]) not in truth]
        assert not miss, f"{store} {task}: {len(miss)} of {len(lab)} label rows without a truth row, e.g. {miss[0]}"
        bad = [r for r in lab if truth[(int(r["subject_id"]), r["prediction_time"])]["outcome"] != ("1" if r["boolean_value"] == "true" else "0")]
        assert not bad, f"{store} {task}: {len(bad)} label rows whose label is not the truth's outcome"
        print(f"{d} {task}: {len(lab)} label rows joined, {sum(r['boolean_value'] == 'true' for r in lab)} positive")
PY

# the ceiling joins on the integer subject ids
"$CLINFM" eval --task tasks/readmission_30d.task --store "$T/m.store" --out "$T/ev" --split-fractions 40/10/50 \
  --bootstrap 0 --baselines logreg --ceiling "$T/m2/truth/readmission_30d.csv" --quiet
grep -q '"ceiling"' "$T/ev/metrics.json"

# --notes is FHIR's
if "$CLINFM" synth --patients 5 --format omop-csv --notes --out "$T/x" 2> "$T/notes.err"; then echo "--notes accepted with omop"; exit 1; fi
grep -q "fhir-ndjson" "$T/notes.err"
[ ! -e "$T/x" ]
echo ok
