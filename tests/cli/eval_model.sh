#!/usr/bin/env bash
# `clinfm eval --model` end to end on the MIMIC-IV demo: ingest, de-identify, train a tiny model
# under a 50/20/30 split (a few seconds), then evaluate 30-day readmission with the model's
# predictors beside the baselines. Checked: metrics.json has zero_shot, readout and finetuned rows
# with AUROC and interval, latency per patient and their settings (the outcome tokens the task
# was translated into); predictions.csv has their columns, every probability in [0, 1]; the
# fitted head goes into the model bundle with its checksum (no copy by hand); a model evaluated
# under another split is refused, and so is a bundle with a tampered part; and `clinfm serve
# --model` with that head answers a stored patient's /v1 risk from the model (its name and
# version), with an interval and reasons dated at or before the prediction time.
set -euo pipefail
. tests/cli/lib.sh
need_data MIMIC mimic-iv-demo
: "${CLINFM:?set CLINFM to the clinfm binary}"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m.store" --quiet \
  --tables patients,admissions,icustays,labevents,diagnoses_icd
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$T/k.key"
"$CLINFM" deid "$T/m.store" --out "$T/d.store" --key "$T/k.key" --quiet
"$CLINFM" train --store "$T/d.store" --out "$T/m.model" --split 50/20/30 --layers 1 --d-model 32 --heads 2 \
  --context 64 --batch 8 --steps 40 --lr 3e-3 --eval-batches 2 --threads 2 > "$T/train.log" || { cat "$T/train.log"; exit 1; }

grep -q -- "--rollouts" <<<"$("$CLINFM" eval --help)" || fail "eval --help lacks --rollouts"
E=(--task tasks/readmission_30d.task --store "$T/d.store" --model "$T/m.model" --bootstrap 100 --seed 2
   --rollouts 4 --max-new-tokens 48)
"$CLINFM" eval "${E[@]}" --split-fractions 50/20/30 --out "$T/ev" > "$T/eval.txt" 2> "$T/eval.err" \
  || { cat "$T/eval.err"; exit 1; }
[ -s "$T/ev/model_head.json" ] || fail "no model_head.json"
$PY - "$T" <<'PY'
import csv, json, sys
T = sys.argv[1]
m = json.load(open(f"{T}/ev/metrics.json"))
names = [p["name"] for p in m["predictors"]]
fails = []
if names != ["logreg", "xgboost", "logreg_365d", "xgboost_365d", "zero_shot", "readout", "finetuned", "record_position"]:
    fails.append(f"predictors {names}")
ho = m["labels"]["held_out"]
for p in m["predictors"]:
    a = p["held_out"]["auroc"]
    if not (0 <= a["value"] <= 1 and a["lo"] <= a["value"] <= a["hi"]):
        fails.append(f"{p['name']}: AUROC {a}")
    lat = p["latency_ms_per_patient"]
    if not (lat["patients"] == ho["patients"] and lat["median"] > 0):
        fails.append(f"{p['name']}: latency {lat}")
zs = next(p for p in m["predictors"] if p["name"] == "zero_shot")["settings"]
if zs.get("rollouts") != 4 or "HOSPITAL_ADMISSION//" not in zs.get("outcome", "") or "30.0 days" not in zs["outcome"]:
    fails.append(f"zero_shot settings {zs}")
ft = next(p for p in m["predictors"] if p["name"] == "finetuned")["settings"]
if "l2_lambda" not in ft or ft.get("head_file") != "model_head.json":
    fails.append(f"finetuned settings {ft}")
with open(f"{T}/ev/predictions.csv", newline="") as f:
    rows = list(csv.DictReader(f))
if len(rows) != ho["rows"]:
    fails.append("predictions.csv rows")
for name in ("zero_shot", "readout", "finetuned"):
    if not all(0 <= float(r[name]) <= 1 for r in rows):
        fails.append(f"{name}: a probability outside [0, 1]")
head = json.load(open(f"{T}/ev/model_head.json"))
if head["task"] != "readmission_30d" or head["method"] != "finetuned" or not head["zero_shot"]["expressible"]:
    fails.append("model_head.json")
card = open(f"{T}/ev/MODEL_CARD.md").read()
if "finetuned" not in card or "zero_shot" not in card:
    fails.append("MODEL_CARD.md does not report the model's predictors")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("eval --model checks passed:", {p["name"]: round(p["held_out"]["auroc"]["value"], 3) for p in m["predictors"]})
PY

# held-out patients of another split may have been training data: refused
if "$CLINFM" eval "${E[@]}" --out "$T/ev2" 2> "$T/err2.txt" > /dev/null; then fail "a model of another split was accepted"; fi
grep -q "another split" "$T/err2.txt" || fail "split refusal not explained: $(cat "$T/err2.txt")"

# the fitted head went into the model bundle (no copy by hand), listed with its checksum
$PY - "$T/m.model" <<'PY' || fail "the head is not in the bundle"
import hashlib, json, os, sys
d = sys.argv[1]
e = json.load(open(os.path.join(d, "manifest.json")))["parts"]["heads/readmission_30d.json"]
b = open(os.path.join(d, "heads/readmission_30d.json"), "rb").read()
assert len(b) == e["bytes"] and hashlib.blake2b(b, digest_size=32).hexdigest() == e["blake2b256"]
assert json.loads(b)["task"] == "readmission_30d"
PY
# eval finds the vocabulary in the bundle; a tampered bundle part is refused, naming the part
cp -r "$T/m.model" "$T/bad.model"
printf 'x' >> "$T/bad.model/vocab.bin"
if "$CLINFM" eval "${E[@]}" --model "$T/bad.model" --split 50/20/30 --out "$T/ev3" 2> "$T/err3.txt" > /dev/null; then
  fail "a tampered bundle was accepted"; fi
grep -q "vocab.bin does not match its checksum" "$T/err3.txt" || fail "tampering not explained: $(cat "$T/err3.txt")"

# the service scores with the model through the head the evaluation put in the bundle
"$CLINFM" audit keygen "$T/serve.key" 2>/dev/null
$PY - docs/serve-example.json "$T" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = sys.argv[2]
c.update(database=t + "/serve.db", secret_file=t + "/serve.key", port=0)
c.pop("reference_model", None)
c["tasks"] = [{"id": "readmission_30d", "title": "30-day readmission", "warning": 0.2, "critical": 0.4}]
for s in c["services"]:
    s["tasks"] = ["readmission_30d"]
json.dump(c, open(t + "/serve.json", "w"))
PY
KEY=$("$CLINFM" token create --config "$T/serve.json" --name test --role clinician 2>/dev/null)
"$CLINFM" label --task tasks/readmission_30d.task --store "$T/d.store" --out "$T/held.csv" --split held_out \
  --split-fractions 50/20/30 --quiet
SID=$(sed -n 2p "$T/held.csv" | cut -d, -f1)
"$CLINFM" serve --config "$T/serve.json" --store "$T/d.store" --model "$T/m.model" --port 0 --port-file "$T/port" \
  --quiet 2> "$T/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "server did not start: $(cat "$T/serve.log")"
PORT=$(tr -d '\n' < "$T/port")
curl -sS --max-time 30 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/patients/$SID/risk" > "$T/risk.json"
$PY - "$T/risk.json" <<'PY' || fail "model risk: $(head -c 400 "$T/risk.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"]["name"] == "m.model" and r["model"]["version"].startswith("step 40"), r["model"]
(p,) = r["predictions"]
lo, hi = p["interval95"]
assert p["task"] == "readmission_30d" and 0 <= lo <= p["risk"] <= hi <= 1, p
assert p["events_used"] > 0
for reason in p["reasons"]:
    assert reason["contribution"] >= 0 and reason["latest_event"]["time"], reason
print("serve --model: risk %.3f (%.3f-%.3f), %d reasons" % (p["risk"], lo, hi, len(p["reasons"])))
PY
# Auxiliary tasks of end-to-end fine-tuning (--ft-aux-task): a long stay beside in-hospital death
# (the same trigger, prediction time and [input] never) trains, and metrics.json names it; a task
# predicted at another time (readmission, at discharge) is refused, saying so, before anything runs.
A=(--store "$T/d.store" --model "$T/m.model" --split-fractions 50/20/30 --baselines none --bootstrap 0
   --model-predictors finetuned_e2e --ft-epochs 2 --ft-lr 3e-3)
"$CLINFM" eval --task tasks/in_hospital_mortality.task "${A[@]}" --ft-aux-task tasks/long_stay_7d.task \
  --ft-aux-weight 0.3 --out "$T/evaux" > "$T/aux.txt" 2> "$T/aux.err" || { cat "$T/aux.err"; fail "eval with an auxiliary task"; }
grep -q "auxiliary heads" "$T/aux.err" || fail "no auxiliary tuning loss in the log"
$PY - "$T/evaux/metrics.json" <<'PY' || fail "auxiliary task not in metrics.json"
import json, sys
m = json.load(open(sys.argv[1]))
(p,) = [p for p in m["predictors"] if p["name"] == "finetuned_e2e"]
s = p["settings"] if isinstance(p["settings"], dict) else json.loads(p["settings"])
assert [a["task"] for a in s["auxiliary_tasks"]] == ["long_stay_7d"] and abs(s["auxiliary_weight"] - 0.3) < 1e-6, s
assert s["auxiliary_tasks"][0]["train_rows_labelled"] > 0, s
print("eval --ft-aux-task: %d train rows labelled by the auxiliary task" % s["auxiliary_tasks"][0]["train_rows_labelled"])
PY
"$CLINFM" eval --task tasks/readmission_30d.task "${A[@]}" --ft-aux-task tasks/in_hospital_mortality.task \
  --out "$T/evaux2" > /dev/null 2> "$T/aux2.err" && fail "an auxiliary task with other prompts was accepted"
grep -q "prediction time (trigger + 24h) differs" "$T/aux2.err" || fail "refusal does not say why: $(cat "$T/aux2.err")"
[ -e "$T/evaux2/metrics.json" ] && fail "a refused run wrote metrics.json"
# A teacher (--ft-distill): XGBoost on value aggregates, out of fold, beside an auxiliary task: it
# trains, the log names the teacher's weight, and metrics.json gives every train row a soft target
# and the teacher's out-of-fold log loss (a teacher that saw its rows would sit near 0).
"$CLINFM" eval --task tasks/in_hospital_mortality.task "${A[@]}" --ft-aux-task tasks/long_stay_7d.task \
  --ft-distill xgboost_values --ft-distill-weight 0.7 --ft-distill-folds 3 --out "$T/evdist" > /dev/null 2> "$T/dist.err" \
  || { cat "$T/dist.err"; fail "eval with a teacher"; }
grep -q "0.70 x last" "$T/dist.err" || fail "the teacher's weight is not in the log: $(grep epoch "$T/dist.err" | head -2)"
$PY - "$T/evdist/metrics.json" "$T/evaux/metrics.json" <<'PY' || fail "teacher not in metrics.json"
import json, sys
def settings(path):
    m = json.load(open(path))
    (p,) = [p for p in m["predictors"] if p["name"] == "finetuned_e2e"]
    return p["settings"] if isinstance(p["settings"], dict) else json.loads(p["settings"])
s, a = settings(sys.argv[1]), settings(sys.argv[2])
t = s["teacher"]
assert t["baseline"] == "xgboost_values" and t["folds"] == 3 and abs(t["weight"] - 0.7) < 1e-6, t
# every train row has a target: as many as the auxiliary task's labelled rows and more
assert t["train_rows"] >= s["auxiliary_tasks"][0]["train_rows_labelled"] > 0, (t, s["auxiliary_tasks"])
assert 0.05 < t["out_of_fold_log_loss"] < 1.0, t
assert "teacher" not in a, a
print("eval --ft-distill: %d train rows with a soft target, out-of-fold log loss %.3f" % (t["train_rows"], t["out_of_fold_log_loss"]))
PY
echo "eval_model passed"
