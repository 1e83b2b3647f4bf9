#!/usr/bin/env bash
# PhysioNet/CinC Challenge 2012 (set A) through mappings/physionet-2012.map, with no
# pre-processing, and the challenge task through tasks/physionet2012_in_hospital_death.task.
# Expected figures are computed here, independently, by Python's csv module from the source
# files: every parameter row with a known value is one event (-1 = unknown gives none), 4,000
# subjects, 0 rejections, label = In-hospital_death for every stay (554 of 4,000). A subset of 300
# stays is exported and compared event by event (time = anchor + HH:MM, code, value). The set
# variable is exercised on a folder laid out like a held-apart set B (symlinks to set A files).
# A sanitizer build (several times slower) reads the 300-stay folder only.
set -euo pipefail
. tests/cli/lib.sh
need_data P12 physionet-2012
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
FULL=1
if grep -q libasan <<<"$(ldd "$CLINFM" 2>/dev/null)"; then FULL=0; fi
if [ "$FULL" = 1 ]; then
  "$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$P12" --out "$T/p.store" \
    --report "$T/report.json" --quiet
  "$CLINFM" inspect "$T/p.store" --json > "$T/inspect.json"
  "$CLINFM" label --task tasks/physionet2012_in_hospital_death.task --store "$T/p.store" \
    --out "$T/labels.csv" --quiet
fi

# A folder laid out like a held-apart set: set-b/ and Outcomes-b.txt (300 stays of set A).
mkdir -p "$T/b/set-b"
ls "$P12/set-a" | sort | sed -n 1,300p | sed "s|^|$P12/set-a/|" | xargs ln -s -t "$T/b/set-b"
ln -s "$P12/Outcomes-a.txt" "$T/b/Outcomes-b.txt"
"$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$T/b" --var set=b --out "$T/b.store" \
  --report "$T/b.json" --quiet
"$CLINFM" export --format meds-csv "$T/b.store" --out "$T/bmeds" > /dev/null
"$CLINFM" label --task tasks/physionet2012_in_hospital_death.task --store "$T/b.store" \
  --out "$T/blabels.csv" --quiet
# A store of many spilled runs has the same bytes (a folder of files, two tables, two workers).
"$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$T/b" --var set=b --out "$T/b1.store" --quiet \
  --memory-mb 1
cmp "$T/b.store" "$T/b1.store" || { echo "store differs with --memory-mb 1"; exit 1; }
# The default (every set in the folder) reads the same files, into the same events.
"$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$T/b" --out "$T/b2.store" --quiet
"$CLINFM" export --format meds-csv "$T/b2.store" --out "$T/bmeds2" > /dev/null
cmp "$T/bmeds/data.csv" "$T/bmeds2/data.csv" || { echo "set=* and set=b differ on a one-set folder"; exit 1; }
# A set that is not there is an error naming the pattern, and no store is written.
if "$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$T/b" --var set=c --out "$T/c.store" \
    2> "$T/c.err"; then echo "set=c should fail"; exit 1; fi
grep -q "set-c/\*.txt: no file matches" "$T/c.err" || { cat "$T/c.err"; exit 1; }  # the first table, always
[ ! -e "$T/c.store" ]
if "$CLINFM" ingest --mapping mappings/physionet-2012.map --input "$T/b" --var sett=b --out "$T/c.store" \
    2> "$T/c.err"; then echo "an undeclared --var should fail"; exit 1; fi
grep -q "declares no such variable" "$T/c.err"

/usr/bin/python3 - "$T" "$FULL" <<'PY'
import csv, gc, glob, json, os, sys
from datetime import datetime, timedelta
gc.disable()  # millions of small lists, no cycles: the collector would only rescan them
T, FULL = sys.argv[1], sys.argv[2] == "1"
P12 = os.environ["P12"]
fails = []
def check(what, got, want):
    if got != want:
        fails.append(f"{what}: got {got}, want {want}")
files = sorted(glob.glob(P12 + "/set-a/*.txt"))
if not FULL:
    files = files[:300]
outc = {r["RecordID"]: r for r in csv.DictReader(open(P12 + "/Outcomes-a.txt", newline=""))}
k = lambda r, c: r[c] != "-1"
known = lambda v: v.strip() != "-1"
# Events of a stay file: one ICU admission, every known measurement (all parameters but
# RecordID, Gender, ICUType), the known categories (Gender, ICUType), a birth per known Age.
# Counted file by file; the rows of the first 300 stays are kept for the event-by-event check.
stays = {}
rows = meas = cats = ages = 0
for i, f in enumerate(files):
    with open(f, newline="") as fh:
        if next(fh).strip() != "Time,Parameter,Value":
            fails.append(f"{f}: unexpected header")
        # (Time, Parameter, Value); the files hold numbers only, no quoted fields
        t = [line.rstrip("\n").split(",") for line in fh]
    rows += len(t)
    for r in t:
        if known(r[2]):
            if r[1] in ("Gender", "ICUType"): cats += 1
            elif r[1] != "RecordID": meas += 1
            if r[1] == "Age": ages += 1
    if i < 300:
        stays[os.path.basename(f)[:-4]] = t
if FULL:
    want_p12 = len(files) + meas + cats + ages
    o = list(outc.values())
    want_out = (sum(k(r, "SAPS-I") for r in o) + sum(k(r, "SOFA") for r in o) + sum(k(r, "Survival") for r in o)
                + sum(r["In-hospital_death"] == "1" for r in o) + sum(k(r, "Length_of_stay") for r in o))
    rep = json.load(open(f"{T}/report.json"))
    src = {s["source"]: s for s in rep["sources"]}
    check("p12 rows", src["p12"]["rows"], rows)
    check("p12 files", src["p12"]["files"], 4000)
    check("p12 events", src["p12"]["events"], want_p12)
    check("p12 accounted", src["p12"]["rows_with_events"] + src["p12"]["rows_filtered"] + src["p12"]["rows_rejected"], rows)
    check("outcomes events", src["outcomes"]["events"], want_out)
    check("rejections", sum(r["count"] for r in rep["rejections"]), 0)
    ins = json.load(open(f"{T}/inspect.json"))
    check("subjects", ins["subjects"], len(files))
    check("subjects == 4000", ins["subjects"], 4000)
    check("events", ins["events"], want_p12 + want_out)
    # Labels: one row per stay, the outcome file's In-hospital_death, predicted at 48 h.
    lab = list(csv.DictReader(open(f"{T}/labels.csv", newline="")))
    check("label rows", len(lab), 4000)
    check("label positives", sum(r["boolean_value"] == "true" for r in lab), sum(r["In-hospital_death"] == "1" for r in o))
    check("label positives == 554", sum(r["boolean_value"] == "true" for r in lab), 554)
    check("labels match the outcome file",
          sum((r["boolean_value"] == "true") != (outc[r["subject_id"]]["In-hospital_death"] == "1") for r in lab), 0)
    check("prediction times", {r["prediction_time"] for r in lab}, {"2100-01-03T00:00:00"})
# Event by event on the 300-stay subset read as set B.
anchor = datetime(2100, 1, 1)
def hhmm(s):
    h, m = s.split(":")
    return anchor + timedelta(minutes=int(h) * 60 + int(m))
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")
codes = {r["Parameter"]: r["code"] for r in csv.DictReader(open("mappings/physionet-2012-parameters.csv"))}
cat = {"Gender//0": "GENDER//F", "Gender//1": "GENDER//M", "ICUType//1": "ICU_TYPE//CCU",
       "ICUType//2": "ICU_TYPE//CSRU", "ICUType//3": "ICU_TYPE//MICU", "ICUType//4": "ICU_TYPE//SICU"}
sub = sorted(stays)[:300]
subset = set(sub)
want = []
for sid in sub:
    want.append((sid, iso(anchor), "ICU_ADMISSION", ""))
    for r in stays[sid]:
        p, v = r[1], r[2]
        if p == "RecordID" or not known(v):
            continue
        t = iso(hhmm(r[0]))
        if p in ("Gender", "ICUType"):
            want.append((sid, t, cat[p + "//" + v], ""))
        else:
            want.append((sid, t, codes[p], "%.6g" % float(v)))
        if p == "Age":
            want.append((sid, iso(anchor - timedelta(seconds=31556952 * float(v))), "MEDS_BIRTH", ""))
    r = outc[sid]
    day_end = lambda d: iso(anchor + timedelta(days=int(d) + 1, seconds=-1))
    if k(r, "SAPS-I"): want.append((sid, iso(anchor + timedelta(hours=24)), "P12//SAPS-I", "%.6g" % float(r["SAPS-I"])))
    if k(r, "SOFA"): want.append((sid, iso(anchor + timedelta(hours=24)), "P12//SOFA", "%.6g" % float(r["SOFA"])))
    if k(r, "Survival"): want.append((sid, day_end(r["Survival"]), "MEDS_DEATH", ""))
    died = r["In-hospital_death"] == "1"
    if died: want.append((sid, day_end(r["Survival"] if k(r, "Survival") else r["Length_of_stay"]), "HOSPITAL_DEATH", ""))
    if k(r, "Length_of_stay"):
        los = int(r["Length_of_stay"])
        if died and k(r, "Survival"): los = min(los, int(r["Survival"]))
        want.append((sid, day_end(los), "HOSPITAL_DISCHARGE//" + ("DIED" if died else "ALIVE"), ""))
got = []
with open(f"{T}/bmeds/data.csv", newline="") as f:
    for r in csv.DictReader(f):
        if r["subject_id"] in subset:  # the outcome file of set A has every stay
            got.append((r["subject_id"], r["time"], r["code"], "%.6g" % float(r["numeric_value"]) if r["numeric_value"] else ""))
check("subset events", len(got), len(want))
check("subset events equal", sorted(got) == sorted(want), True)
if sorted(got) != sorted(want):
    print("only in store:", sorted(set(got) - set(want))[:5], "only expected:", sorted(set(want) - set(got))[:5])
b = {s["source"]: s for s in json.load(open(f"{T}/b.json"))["sources"]}
check("set b files", b["p12"]["files"], 300)
check("set b rejections", sum(r["count"] for r in json.load(open(f"{T}/b.json"))["rejections"]), 0)
lab = list(csv.DictReader(open(f"{T}/blabels.csv", newline="")))
check("set b label rows", sorted(r["subject_id"] for r in lab), sub)
check("set b labels match the outcome file",
      sum((r["boolean_value"] == "true") != (outc[r["subject_id"]]["In-hospital_death"] == "1") for r in lab), 0)
if fails:
    print("\n".join(fails)); sys.exit(1)
print("physionet 2012 ingest and label checks passed")
PY
