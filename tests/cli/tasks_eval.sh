#!/usr/bin/env bash
# `clinfm eval` on the MIMIC-IV demo (length of stay over 7 days, 50/20/30 split): the outputs
# appear; the held-out rows are exactly `clinfm label --split held_out`; every predictor's AUROC,
# AUPRC and Brier score in metrics.json are recomputed here from predictions.csv (scikit-learn
# when installed, else the definitions); the report is self-contained and says how few patients
# it rests on; the model card carries the oversight statement; a missing model is a clear error.
set -euo pipefail
. tests/cli/lib.sh
need_data MIMIC mimic-iv-demo
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m.store" --quiet \
  --tables patients,admissions,icustays,labevents,diagnoses_icd
"$CLINFM" eval --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/ev" --split-fractions 50/20/30 \
  --bootstrap 200 --seed 5 > "$T/eval.txt" 2> "$T/eval.err"
grep -q "TOO FEW to judge a model" "$T/eval.txt"
for f in metrics.json predictions.csv report.html MODEL_CARD.md; do [ -s "$T/ev/$f" ] || { echo "missing $f"; exit 1; }; done
"$CLINFM" label --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/held.csv" --split held_out \
  --split-fractions 50/20/30 --quiet

/usr/bin/python3 - "$T" <<'PY'
import csv, json, sys
T = sys.argv[1]
m = json.load(open(f"{T}/ev/metrics.json"))
with open(f"{T}/ev/predictions.csv", newline="") as f:
    rd = csv.DictReader(f); pred = list(rd); names = rd.fieldnames[3:]
with open(f"{T}/held.csv", newline="") as f:
    held = [(r["subject_id"], r["prediction_time"], r["boolean_value"]) for r in csv.DictReader(f)]
fails = []
if [(r["subject_id"], r["prediction_time"], r["boolean_value"]) for r in pred] != held:
    fails.append("predictions.csv rows differ from the held_out labels")
if names != ["logreg", "xgboost"]:
    fails.append(f"predictors {names}")
y = [r["boolean_value"] == "true" for r in pred]
try:
    from sklearn.metrics import roc_auc_score, average_precision_score, brier_score_loss
except ImportError:
    def roc_auc_score(y, p):
        P = [a for a, b in zip(p, y) if b]; N = [a for a, b in zip(p, y) if not b]
        return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in P for b in N) / (len(P) * len(N))
    def average_precision_score(y, p):
        P = sum(y); ap = prev = 0.0
        for t in sorted(set(p), reverse=True):
            tp = sum(1 for a, b in zip(p, y) if a >= t and b); fp = sum(1 for a, b in zip(p, y) if a >= t and not b)
            ap += (tp / P - prev) * tp / (tp + fp); prev = tp / P
        return ap
    def brier_score_loss(y, p):
        return sum((a - b) ** 2 for a, b in zip(p, y)) / len(y)
ho = m["labels"]["held_out"]
if ho["rows"] != len(pred) or ho["positives"] != sum(y):
    fails.append("held-out counts")
for p in m["predictors"]:
    prob = [float(r[p["name"]]) for r in pred]
    got = p["held_out"]
    # predictions.csv holds every float exactly (%.9g), so the figures must agree to rounding
    for key, fn, tol in (("auroc", roc_auc_score, 1e-9), ("auprc", average_precision_score, 1e-9),
                         ("brier", brier_score_loss, 1e-7)):
        want = fn(y, prob)
        if abs(got[key]["value"] - want) > tol:
            fails.append(f"{p['name']} {key}: {got[key]['value']} vs {want}")
        if not (got[key]["lo"] <= got[key]["value"] <= got[key]["hi"]):
            fails.append(f"{p['name']} {key}: interval does not hold the value")
    if p["held_out"]["auroc"]["value"] < 0.55:
        fails.append(f"{p['name']}: AUROC {p['held_out']['auroc']['value']} barely above chance")
    lat = p["latency_ms_per_patient"]
    if not (lat["patients"] == ho["patients"] and lat["median"] > 0):
        fails.append(f"{p['name']}: latency")
    sexes = p["subgroups"]["sex"]
    if sum(g["rows"] for g in sexes) != len(pred) or {g["value"] for g in sexes} != {"F", "M"}:
        fails.append("sex subgroups")
if not m["small_sample"]:
    fails.append("a 100-patient data set must be flagged as small")
html = open(f"{T}/ev/report.html").read()
if "<script" in html or html.count("http") != html.count('xmlns="http://www.w3.org/2000/svg"'):
    fails.append("report.html is not self-contained")
if f"This evaluation rests on {ho['patients']} held-out patients" not in html or "too few" not in html:
    fails.append("report.html does not say how few patients it rests on")
if "The whole data set holds 100 patients" not in html:
    fails.append("report.html does not name the data set size")
card = open(f"{T}/ev/MODEL_CARD.md").read()
for s in ("## Intended use", "## Training and evaluation data", "## Performance on held-out patients",
          "## Subgroups", "## Limitations", "The model advises; a clinician decides."):
    if s not in card:
        fails.append(f"MODEL_CARD.md lacks {s!r}")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("eval checks passed:", {p["name"]: round(p["held_out"]["auroc"]["value"], 3) for p in m["predictors"]})
PY

# a model that cannot be loaded is a clear error, not a silent baseline-only run
if "$CLINFM" eval --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/ev2" --model "$T/none.model" \
     --quiet 2> "$T/err.txt"; then
  echo "a missing model was accepted"; exit 1
fi
grep -q "none.model" "$T/err.txt"
if "$CLINFM" eval --task tasks/long_stay_7d.task --store "$T/m.store" --out "$T/ev3" --baselines none 2>/dev/null; then
  echo "nothing to evaluate was accepted"; exit 1
fi
"$CLINFM" eval --help | grep -q "report.html"
echo "tasks_eval passed"
