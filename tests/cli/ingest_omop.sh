#!/usr/bin/env bash
# The bundled OMOP CDM (OHDSI Eunomia GiBleed) through mappings/omop-cdm.map: 2,694 subjects, and
# condition, drug and measurement events equal to their tables' rows minus reported rejections,
# counted independently here with Python's csv module. Concept ids become VOCABULARY//CODE.
set -euo pipefail
. tests/cli/lib.sh
need_data OMOP omop-gibleed
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" ingest --mapping mappings/omop-cdm.map --input "$OMOP" --out "$T/o.store" \
  --report "$T/report.json" --quiet
"$CLINFM" inspect "$T/o.store" --json --verify > "$T/inspect.json"
"$CLINFM" export --format meds-csv "$T/o.store" --out "$T/meds" > /dev/null
# Without the CONCEPT table (optional dictionary) the ingest still works, keeping concept ids.
mkdir -p "$T/noconcept"
for f in "$OMOP"/*; do [ "$(basename "$f")" = CONCEPT.csv ] || ln -s "$f" "$T/noconcept/"; done
"$CLINFM" ingest --mapping mappings/omop-cdm.map --input "$T/noconcept" --out "$T/n.store" --quiet
"$CLINFM" export --format meds-csv "$T/n.store" --out "$T/nmeds" > /dev/null
/usr/bin/python3 - "$T" <<'PY'
import csv, gzip, json, os, sys
T = sys.argv[1]
def rows(name):
    path = os.environ["OMOP"] + "/" + name
    f = gzip.open(path, "rt", newline="") if path.endswith(".gz") else open(path, newline="")
    with f:
        return list(csv.DictReader(f))
fails = []
def check(what, got, want):
    if got != want:
        fails.append(f"{what}: got {got}, want {want}")
ins = json.load(open(f"{T}/inspect.json"))
check("subjects", ins["subjects"], len({r["PERSON_ID"] for r in rows("PERSON.csv.gz")}))
check("subjects == 2694", ins["subjects"], 2694)
rep = json.load(open(f"{T}/report.json"))
src = {s["source"]: s for s in rep["sources"]}
rejected = {}
for r in rep["rejections"]:
    rejected[r["source"]] = rejected.get(r["source"], 0) + r["count"]
for table, file in [("condition_occurrence", "CONDITION_OCCURRENCE.csv.gz"),
                    ("drug_exposure", "DRUG_EXPOSURE.csv.gz"), ("measurement", "MEASUREMENT.csv.gz"),
                    ("procedure_occurrence", "PROCEDURE_OCCURRENCE.csv.gz")]:
    n = len(rows(file))
    check(f"{table} rows", src[table]["rows"], n)
    check(f"{table} events == rows - rejected", src[table]["events"], n - rejected.get(table, 0))
# Concept translation: every condition whose concept is in CONCEPT (and not 0) is VOCAB//CODE.
concept = {r["CONCEPT_ID"]: r for r in rows("CONCEPT.csv") if r["CONCEPT_ID"] != "0"}
want = {}
for r in rows("CONDITION_OCCURRENCE.csv.gz"):
    c = concept.get(r["CONDITION_CONCEPT_ID"])
    code = f'{c["VOCABULARY_ID"]}//{c["CONCEPT_CODE"]}' if c else f'OMOP_CONCEPT//{r["CONDITION_CONCEPT_ID"]}'
    want[code] = want.get(code, 0) + 1
with open(f"{T}/meds/codes.csv", newline="") as f:
    got = {r["code"]: int(r["count"]) for r in csv.DictReader(f)}
for code, n in want.items():
    check(f"count of {code}", got.get(code), n)
with open(f"{T}/nmeds/codes.csv", newline="") as f:
    nocon = {r["code"]: int(r["count"]) for r in csv.DictReader(f)}
check("without CONCEPT.csv, conditions keep their ids",
      sum(v for k, v in nocon.items() if k.startswith("OMOP_CONCEPT//")) >= len(rows("CONDITION_OCCURRENCE.csv.gz")), True)
if fails:
    print("\n".join(fails)); sys.exit(1)
print("omop ingest checks passed")
PY
