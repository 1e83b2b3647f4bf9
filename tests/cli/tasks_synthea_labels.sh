#!/usr/bin/env bash
# `clinfm label` for the four new-onset tasks on the bundled Synthea FHIR population, against
# labels computed here in Python from the store's MEDS export by the definitions in docs/TASKS.md
# (adult, alive, a year of complete record, no earlier diagnosis, diagnosis within 365 days,
# follow-up to death or the data's end with death first a competing event, one prediction per
# patient-year): every row must match. Skipped only when this build's ingest has
# no FHIR reader.
set -euo pipefail
. tests/cli/lib.sh
need_data SYNTHEA synthea-fhir-r4
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
if ! grep -q -- "--format fhir" <<<"$("$CLINFM" ingest --help)"; then
  echo "skipped: this build cannot ingest FHIR"; exit 0
fi
"$CLINFM" ingest --format fhir --input "$SYNTHEA" --out "$T/s.store" --quiet
"$CLINFM" export --format meds-csv "$T/s.store" --out "$T/meds" > /dev/null
for task in new_onset_t2d new_onset_hypertension new_onset_ckd new_onset_heart_failure; do
  "$CLINFM" label --task "tasks/$task.task" --store "$T/s.store" --out "$T/$task.csv" --quiet
done
/usr/bin/python3 - "$T" <<'PY'
import csv, hashlib, sys
from datetime import datetime, timedelta
T = sys.argv[1]
events = {}
with open(f"{T}/meds/data.csv", newline="") as f:
    for r in csv.DictReader(f):
        events.setdefault(r["subject_id"], []).append(
            (datetime.fromisoformat(r["time"]) if r["time"] else None, r["code"]))
desc = {}  # subgroup values carry the code's dictionary label: "2106-3 (White)"
with open(f"{T}/meds/codes.csv", newline="") as f:
    for r in csv.DictReader(f):
        desc[r["code"]] = r["description"]
key = hashlib.blake2b(b"clinfm default split key v1", digest_size=32).digest()
def split(sid):
    h = hashlib.blake2b(int(sid).to_bytes(8, "little", signed=True), key=key, digest_size=8).digest()
    v = int.from_bytes(h, "little") % 1000000
    return "train" if v < 800000 else "tuning" if v < 900000 else "held_out"
def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (t.strftime(".%f") if t.microsecond else "")
YEAR = timedelta(days=365)
def years(a, b):
    return (b - a).total_seconds() / (365.2425 * 86400)
def band(age):
    return "<45" if age < 45 else "45-64" if age < 65 else "65-79" if age < 80 else "80+"
def latest(ev, pt, prefix):  # the latest matching event at or before pt (static facts first)
    v = "unknown"
    for t, c in ev:
        if (t is None or t <= pt) and c.startswith(prefix):
            v = c[len(prefix):]
            if desc.get(c) and desc[c] != v:
                v = f"{v} ({desc[c]})"
    return v
data_end = max(t for ev in events.values() for t, c in ev if t is not None)
fails = []
for task in ("new_onset_t2d", "new_onset_hypertension", "new_onset_ckd", "new_onset_heart_failure"):
    codes, section = set(), None
    for l in open(f"tasks/{task}.task"):  # the codes of [codes condition]
        if l.startswith("["): section = l.strip()
        elif section == "[codes condition]" and l.startswith("code ="):
            codes.add(l.split("=", 1)[1].split("#")[0].strip())
    want = set()
    for sid, ev in events.items():
        timed = [(t, c) for t, c in ev if t is not None]
        if not timed:
            continue
        birth = next((t for t, c in timed if c == "MEDS_BIRTH"), None)
        # complete from the first lab, vital sign or immunisation; followed up to death or the
        # data's end (an identified store: its last event)
        complete = next((t for t, c in timed if c.startswith(("LOINC//", "CVX//"))), None)
        death = next((t for t, c in timed if c == "MEDS_DEATH"), None)
        dx = [t for t, c in timed if c in codes]
        cands = []
        for pt in sorted({t for t, c in timed if c.startswith("ENCOUNTER_END//")}):
            if birth is None or years(birth, pt) < 18: continue
            if any(t <= pt for t in dx): continue
            if complete is None or complete > pt - YEAR: continue
            if death is not None and death <= pt: continue
            fu = data_end if death is None else min(data_end, death)
            outcome = next((t for t in dx if pt < t <= pt + YEAR), None)
            if outcome is not None and outcome <= fu:
                label, competing = True, False
            elif death is not None and death <= pt + YEAR:
                label, competing = False, True  # died first: a competing event, kept
            elif pt + YEAR <= fu:
                label, competing = False, False
            else:
                continue  # censored: the data end before the year does
            cands.append((pt, label, competing))
        last = None
        for pt, label, competing in cands:
            if last is not None and pt < last + YEAR: continue
            last = pt
            want.add((sid, fmt(pt), "true" if label else "false", split(sid), "true" if competing else "false",
                      latest(ev, pt, "GENDER//"), band(years(birth, pt)), latest(ev, pt, "RACE//"),
                      latest(ev, pt, "ETHNICITY//")))
    with open(f"{T}/{task}.csv", newline="") as f:
        rd = csv.reader(f); header = next(rd); got = {tuple(r) for r in rd}
    if header != ["subject_id", "prediction_time", "boolean_value", "split", "competing_event", "sex", "age", "race",
                  "ethnicity"]:
        fails.append(f"{task}: header {header}")
    if got != want:
        fails.append(f"{task}: {len(got - want)} unexpected, {len(want - got)} missing; e.g. "
                     f"{sorted(got - want)[:2]} / {sorted(want - got)[:2]}")
    pos = sum(1 for r in want if r[2] == "true")
    comp = sum(1 for r in want if r[4] == "true")
    print(f"{task}: {len(want)} rows, {pos} positive, {comp} competing deaths, {len({r[0] for r in want})} patients")
    if pos == 0:
        fails.append(f"{task}: no positive at all")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("synthea label checks passed")
PY
