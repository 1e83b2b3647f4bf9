#!/usr/bin/env bash
# `clinfm synth --notes`: the notes of hospital stays, written by issue 14's note generator from
# each patient's own identifiers, arrive as DocumentReferences that ingest with 0 rejections;
# the gold files hold the same texts in the same order, every gold span lies inside its text and
# is not blank, the patient's own name and record number are among the gold spans of their
# notes, and `clinfm deid-eval` reads both gold layouts. The same bytes for 1 and 2 threads.
set -euo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" synth --patients 150 --seed 3 --notes --truth-paths 0 --threads 2 --out "$T/n" --quiet
"$CLINFM" synth --patients 150 --seed 3 --notes --truth-paths 0 --threads 1 --out "$T/n1" --quiet
for f in fhir/DocumentReference.000.ndjson notes/gold.presidio.json notes/gold.phrase.txt; do
  cmp "$T/n/$f" "$T/n1/$f"
done
"$CLINFM" ingest --format fhir --input "$T/n/fhir" --out "$T/n.store" --strict --quiet
/usr/bin/python3 - "$T/n" <<'PY'
import base64, json, sys
d = sys.argv[1]
pats = {}
for l in open(f"{d}/fhir/Patient.000.ndjson"):
    r = json.loads(l); pats[r["id"]] = r
docs = [json.loads(l) for l in open(f"{d}/fhir/DocumentReference.000.ndjson")]
gold = json.load(open(f"{d}/notes/gold.presidio.json"))
assert len(docs) == len(gold) > 20, (len(docs), len(gold))
own = 0
for doc, g in zip(docs, gold):
    text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8")
    assert text == g["full_text"], doc["id"]
    p = pats[doc["subject"]["reference"].split("/")[1]]
    fam, mrn = p["name"][0]["family"].lower(), p["identifier"][0]["value"].lower()
    spans = [text[s["start_position"]:s["end_position"]] for s in g["spans"]]   # code points: str slicing
    assert all(s.strip() for s in spans), doc["id"]
    assert all(0 <= s["start_position"] < s["end_position"] <= len(text) for s in g["spans"]), doc["id"]
    # every mention of the family name or MRN in the text lies inside a gold span
    low = text.lower()
    for needle in (fam, mrn):
        i = low.find(needle)
        while i >= 0:
            assert any(s["start_position"] <= i and i + len(needle) <= s["end_position"] for s in g["spans"]), (doc["id"], "unannotated identifier")
            own += 1
            i = low.find(needle, i + 1)
assert own > 20, own
print(f"{len(docs)} notes, {sum(len(g['spans']) for g in gold)} gold spans, {own} mentions of the patients' own name or MRN, all annotated")
PY
"$CLINFM" deid-eval --corpus "$T/n/notes/gold.presidio.json" --format presidio > "$T/eval1.txt"
"$CLINFM" deid-eval --corpus "$T/n/notes/gold.phrase.txt" --format phrase > "$T/eval2.txt"
grep -q "OVERALL" "$T/eval1.txt"
grep -q "OVERALL" "$T/eval2.txt"
echo ok
