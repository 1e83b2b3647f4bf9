#!/usr/bin/env bash
# PhysioNet/CinC Challenge 2019 (training set B, 9,271 stays) through mappings/physionet-2019.map,
# with no pre-processing: pipe separator, wide hourly rows unpivoted, NaN as missing, times in
# hours relative to ICU admission. The full set must give 9,271 subjects, 0 rejections and one
# event per measured value (counted here, independently, by Python from the files) plus the
# per-stay facts; 300 stays are exported and compared event by event. A sanitizer build (several
# times slower) reads the 300 stays only.
set -euo pipefail
. tests/cli/lib.sh
need_data P19 physionet-2019-sepsis-b
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
FULL=1
if grep -q libasan <<<"$(ldd "$CLINFM" 2>/dev/null)"; then FULL=0; fi
if [ "$FULL" = 1 ]; then
  "$CLINFM" ingest --mapping mappings/physionet-2019.map --input "$P19" --out "$T/p.store" \
    --report "$T/report.json" --quiet
  "$CLINFM" inspect "$T/p.store" --json > "$T/inspect.json"
fi
mkdir -p "$T/sub"
ls "$P19" | grep '\.psv$' | sort | sed -n 1,300p | sed "s|^|$P19/|" | xargs ln -s -t "$T/sub"
"$CLINFM" ingest --mapping mappings/physionet-2019.map --input "$T/sub" --out "$T/sub.store" --quiet \
  --report "$T/sub.json"
"$CLINFM" export --format meds-csv "$T/sub.store" --out "$T/meds" > /dev/null

/usr/bin/python3 - "$T" "$FULL" <<'PY'
import csv, gc, glob, json, os, sys
from datetime import datetime, timedelta
gc.disable()  # millions of small lists, no cycles: the collector would only rescan them
T, P19, FULL = sys.argv[1], os.environ["P19"], sys.argv[2] == "1"
fails = []
def check(what, got, want):
    if got != want:
        fails.append(f"{what}: got {got}, want {want}")
def read(f):
    with open(f) as fh:
        return [line.rstrip("\n").split("|") for line in fh]
# Full set: every measured value (HR .. Platelets, not NaN) is an event; per stay one ICU and
# one hospital admission, age, birth and sex (when known), the ICU type flags set to 1, and the
# first hour labelled septic.
files = sorted(glob.glob(P19 + "/p*.psv"))
check("subset rejections", sum(r["count"] for r in json.load(open(f"{T}/sub.json"))["rejections"]), 0)
if FULL:
    rows = values = per_stay = 0
    for f in files:
        t = read(f)
        h, body = t[0], t[1:]
        rows += len(body)
        values += sum(v != "NaN" for r in body for v in r[:34])
        first = body[0]
        col = lambda r, c: r[h.index(c)]
        per_stay += 1 + (col(first, "HospAdmTime") != "NaN") + 2 * (col(first, "Age") != "NaN")
        per_stay += col(first, "Gender") in ("0", "1")
        per_stay += (col(first, "Unit1") == "1") + (col(first, "Unit2") == "1")
        per_stay += any(col(r, "SepsisLabel") == "1" for r in body)
    rep = json.load(open(f"{T}/report.json"))
    s = rep["sources"][0]
    check("files", s["files"], len(files))
    check("rows", s["rows"], rows)
    check("events", s["events"], values + per_stay)
    check("rejections", sum(r["count"] for r in rep["rejections"]), 0)
    check("accounted", s["rows_with_events"] + s["rows_filtered"] + s["rows_rejected"], rows)
    ins = json.load(open(f"{T}/inspect.json"))
    check("subjects", ins["subjects"], len(files))
    check("subjects == 9271", ins["subjects"], 9271)
    check("events in store", ins["events"], values + per_stay)
# 300 stays, event by event.
anchor = datetime(2100, 1, 1)
def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f" if t.microsecond else "%Y-%m-%dT%H:%M:%S")
at = lambda hours: iso(anchor + timedelta(microseconds=round(float(hours) * 3600e6)))
codes = {r["variable"]: r["code"] for r in csv.DictReader(open("mappings/physionet-2019-variables.csv"))}
num = lambda v: "%.6g" % float(v)
want = []
for f in files[:300]:
    t = read(f)
    h, body = t[0], t[1:]
    sid = os.path.basename(f)[1:-4]
    col = lambda r, c: r[h.index(c)]
    for r in body:
        for i, v in enumerate(r[:34]):
            if v != "NaN":
                want.append((sid, at(col(r, "ICULOS")), codes[h[i]], num(v)))
    first = body[0]
    want.append((sid, at(0), "ICU_ADMISSION", ""))
    if col(first, "HospAdmTime") != "NaN":
        want.append((sid, at(col(first, "HospAdmTime")), "HOSPITAL_ADMISSION", ""))
    if col(first, "Age") != "NaN":
        want.append((sid, at(0), "ICU//Age//years", num(col(first, "Age"))))
        want.append((sid, iso(anchor - timedelta(microseconds=round(float(col(first, "Age")) * 31556952e6))), "MEDS_BIRTH", ""))
    g = {"0": "GENDER//F", "1": "GENDER//M"}.get(col(first, "Gender"))
    if g: want.append((sid, at(0), g, ""))
    if col(first, "Unit1") == "1": want.append((sid, at(0), "ICU_TYPE//MICU", ""))
    if col(first, "Unit2") == "1": want.append((sid, at(0), "ICU_TYPE//SICU", ""))
    sep = [r for r in body if col(r, "SepsisLabel") == "1"]
    if sep: want.append((sid, at(col(sep[0], "ICULOS")), "P19//SepsisLabel", "1"))
got = []
with open(f"{T}/meds/data.csv", newline="") as fh:
    for r in csv.DictReader(fh):
        got.append((r["subject_id"], r["time"], r["code"], num(r["numeric_value"]) if r["numeric_value"] else ""))
check("subset events", len(got), len(want))
if sorted(got) != sorted(want):
    fails.append("subset events differ; only in store: %s; only expected: %s"
                 % (sorted(set(got) - set(want))[:3], sorted(set(want) - set(got))[:3]))
if fails:
    print("\n".join(fails)); sys.exit(1)
print("physionet 2019 ingest checks passed")
PY
