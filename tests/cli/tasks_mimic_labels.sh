#!/usr/bin/env bash
# `clinfm label` on the bundled MIMIC-IV demo for the four hospital tasks, against labels computed
# here, independently, in Python from the source tables (admissions, icustays, patients) by the
# definitions in docs/TASKS.md: every row (subject, prediction time, label, split, sex, age band,
# race, insurance) must match, and nothing may be missing or extra. The split column is checked
# against the keyed BLAKE2b assignment recomputed with hashlib. Bad task files fail with file:line.
set -euo pipefail
. tests/cli/lib.sh
need_data MIMIC mimic-iv-demo
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m.store" --quiet \
  --tables patients,admissions,icustays
for task in in_hospital_mortality readmission_30d icu_admission long_stay_7d; do
  "$CLINFM" label --task "tasks/$task.task" --store "$T/m.store" --out "$T/$task.csv" > "$T/$task.txt"
done
grep -q "trigger events      275" "$T/in_hospital_mortality.txt"
# --split keeps one split only
"$CLINFM" label --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/los_held.csv" --split held_out --quiet

/usr/bin/python3 - "$T" <<'PY'
import csv, gzip, hashlib, os, sys
from datetime import datetime, timedelta
T = sys.argv[1]
def rows(path):
    with gzip.open(os.environ["MIMIC"] + "/" + path, "rt", newline="") as f:
        return list(csv.DictReader(f))
ts = lambda s: datetime.fromisoformat(s) if s else None
fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")
adm = rows("hosp/admissions.csv.gz")
icu = rows("icu/icustays.csv.gz")
pat = {r["subject_id"]: r for r in rows("hosp/patients.csv.gz")}
by_subj = {}
for a in adm:
    a["admit"], a["disch"], a["death"] = ts(a["admittime"]), ts(a["dischtime"]), ts(a["deathtime"])
    by_subj.setdefault(a["subject_id"], []).append(a)
icu_times = {}
for r in icu:
    icu_times.setdefault(r["subject_id"], []).append(ts(r["intime"]))

# the split: BLAKE2b-64 keyed with the default key, id as 8 little-endian bytes, mod 1e6
key = hashlib.blake2b(b"clinfm default split key v1", digest_size=32).digest()
def split(sid):
    h = hashlib.blake2b(int(sid).to_bytes(8, "little", signed=True), key=key, digest_size=8).digest()
    v = int.from_bytes(h, "little") % 1000000
    return "train" if v < 800000 else "tuning" if v < 900000 else "held_out"

def death_times(sid):  # HOSPITAL_DEATH at deathtime; HOSPITAL_DISCHARGE//DIED at dischtime
    out = [a["death"] for a in by_subj[sid] if a["death"]]
    out += [a["disch"] for a in by_subj[sid] if a["discharge_location"] == "DIED"]
    return out

def band(sid, pt):
    p = pat[sid]
    birth = datetime(int(p["anchor_year"]) - int(p["anchor_age"]), 1, 1)
    age = (pt - birth).total_seconds() / (365.2425 * 86400)
    for lo, hi, name in ((0, 18, "<18"), (18, 45, "18-44"), (45, 65, "45-64"), (65, 80, "65-79")):
        if age < hi: return name
    return "80+"

def latest(sid, pt, field):  # RACE// and INSURANCE// events sit at each admission time
    best = None
    for a in by_subj[sid]:
        if a["admit"] <= pt and (best is None or a["admit"] >= best[0]):
            best = (a["admit"], a[field] or "UNK")
    return best[1] if best else "unknown"

def row(sid, pt, label):
    return (sid, fmt(pt), "true" if label else "false", split(sid), pat[sid]["gender"], band(sid, pt),
            latest(sid, pt, "race"), latest(sid, pt, "insurance"))

H24 = timedelta(hours=24)
want = {k: set() for k in ("in_hospital_mortality", "readmission_30d", "icu_admission", "long_stay_7d")}
for sid, stays in by_subj.items():
    deaths = death_times(sid)
    for a in stays:
        admit, disch = a["admit"], a["disch"]
        ended = disch is not None and disch >= admit  # the discharge of this record
        pt = admit + H24
        if ended and disch > pt and not any(d <= pt for d in deaths):
            want["in_hospital_mortality"].add(row(sid, pt, any(pt < d <= disch for d in deaths)))
            want["long_stay_7d"].add(row(sid, pt, disch > admit + timedelta(days=7)))
        if ended and not any(admit <= d <= disch for d in deaths):
            want["readmission_30d"].add(row(sid, disch, any(disch < b["admit"] <= disch + timedelta(days=30)
                                                            for b in stays)))
        ic = icu_times.get(sid, [])
        if ended and disch > admit and not any(admit - timedelta(hours=12) <= t <= admit for t in ic):
            want["icu_admission"].add(row(sid, admit, any(admit < t <= disch for t in ic)))
fails = []
for task, exp in want.items():
    with open(f"{T}/{task}.csv", newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        got = [tuple(r) for r in rd]
    if header != ["subject_id", "prediction_time", "boolean_value", "split", "sex", "age", "race", "insurance"]:
        fails.append(f"{task}: header {header}")
    if len(got) != len(set(got)):
        fails.append(f"{task}: duplicate rows")
    got = set(got)
    if got != exp:
        fails.append(f"{task}: {len(got - exp)} unexpected rows, {len(exp - got)} missing; e.g. "
                     f"{sorted(got - exp)[:2]} / {sorted(exp - got)[:2]}")
    pos = sum(1 for r in exp if r[2] == "true")
    print(f"{task}: {len(exp)} rows, {pos} positive")
    if not (0 < pos < len(exp)):
        fails.append(f"{task}: expected both classes")
with open(f"{T}/los_held.csv", newline="") as f:
    held = {tuple(r) for r in list(csv.reader(f))[1:]}
if held != {r for r in want["long_stay_7d"] if r[3] == "held_out"}:
    fails.append("--split held_out differs from the held_out rows")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("mimic label checks passed")
PY

# errors name the task file and line, and leave no output behind
printf '[task]\nname = bad\n[codes a]\nprefix = A//\n[trigger]\ncodes = a\n[label]\nwhen = any b in (prediction, +inf)\n' > "$T/bad.task"
if "$CLINFM" label --task "$T/bad.task" --store "$T/m.store" --out "$T/bad.csv" 2> "$T/err.txt"; then
  echo "a bad task file was accepted"; exit 1
fi
grep -q "bad.task:8: no \[codes b\] section" "$T/err.txt"
[ ! -e "$T/bad.csv" ]
if "$CLINFM" label --task tasks/long_stay_7d.task --out "$T/x.csv" 2>/dev/null; then echo "missing --store accepted"; exit 1; fi
if "$CLINFM" label --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/x.csv" --split test 2>/dev/null; then
  echo "bad --split accepted"; exit 1
fi
grep -q "MEDS label schema" <<<"$("$CLINFM" label --help)"
echo "tasks_mimic_labels passed"
