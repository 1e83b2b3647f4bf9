#!/usr/bin/env bash
# Outputs before and after a change that must not change behaviour (a refactor): runs a fixed set
# of commands on the test suite's material into a folder, and compares two such folders byte for
# byte.
#
#   scripts/compare_outputs.sh run OUTDIR [CLINFM]   run the commands with CLINFM (default
#                                                    build/clinfm) into OUTDIR (must not exist)
#   scripts/compare_outputs.sh compare A B           compare two folders; exit 0 when identical
#
# Typical use: build main, `run /tmp/before build/clinfm`; build the branch, `run /tmp/after`;
# `compare /tmp/before /tmp/after`. Run it twice on one binary to see the comparison is fair.
#
# The commands (public datasets read in place through $CLINFM_DATA, default ../shared/data):
# a synthetic population (`clinfm synth`, with notes and ground truth) and its FHIR ingest; the
# MIMIC-IV demo through its mapping, OMOP GiBleed, a few Synthea bundles and the Synthea bulk
# export; inspect (summary, --json, a subject), MEDS export; deid of the MIMIC and synthetic
# stores with a fixed key (tags, surrogates); deid-text, deid-notes, deid-eval; vocab with shards,
# tokens; a few training steps, and a resumed run (and train's other paths: a fold, a given
# vocabulary, continuous inputs, early stopping, --init, refusals); labels for hospital and
# new-onset tasks; eval with the model's predictors (the head written into the bundle) and with
# the synthetic ceiling; and the service's responses (discovery, tasks, a stored patient's model
# risk, a patient-view hook with prefetch, /v1/risk on a FHIR bundle).
#
# What is pinned or normalised (the intentional nondeterminism), and nothing else:
# - train's time-triggered progress lines (one every 30 s; the evaluation lines stay) are left out;
# - the de-identification key is a fixed file (keygen draws a random one); every run works in the
#   same folder (/tmp/clinfm-compare.run, one run at a time), since stores and logs name paths;
# - text files (and JSON strings) are compared with clock times (ISO 8601 stamps: the report's
#   and model card's "generated"/"evaluated", the manifest's "written"), durations ("1.2 s",
#   "4.35 ms"), rates ("5000 tokens/s", "0.8 MB/s") and the service's port replaced by
#   placeholders;
# - JSON values under keys that hold wall time or rates (*seconds*, *per_second*, *_per_s,
#   latency*, written) or random ids (uuid: the service's cards) are replaced; so is the bundle
#   manifest's size and checksum of train.json, which records the training rate;
# - a text file that differs is compared again after normalising and reported as "same after
#   normalising"; every other file, binary or not, is compared byte for byte (stores,
#   vocabularies, shards, checkpoints, heads, labels, predictions, the service's responses).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

normalise() { # FILE: prints the file with the clock-bound and random parts replaced
  "$PY" - "$1" <<'PY'
import json, re, sys
path = sys.argv[1]
data = open(path, "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError:
    sys.stdout.buffer.write(data); sys.exit(0)
# Values under these keys are wall times, rates or the moment of writing; the rest is compared.
CLOCK_KEY = re.compile(r"(seconds|per_second|_per_s$|latency|^written$|^uuid$)")
# In text (and JSON strings): clock times, durations and rates.
CLOCK_TEXT = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)? / \d+(\.\d+)? ms\b"), "<t> / <t> ms"),
    (re.compile(r"\b\d+(\.\d+)?( ?)(ms|s)\b"), r"<t>\2\3"),
    (re.compile(r"\b\d+(\.\d+)?( ?)(([a-z]+ )?[A-Za-z]+/s)\b"), r"<rate>\2\3"),
]
# train's log to a file: besides the evaluation lines, a progress line at the first step and then
# whenever 30 s have passed, so how many there are follows the machine's load.
TRAIN_PROGRESS = re.compile(r"^step +\d+/\d+  train loss \S+  lr \S+  <rate> tokens/s  ETA <t> s\n", re.M)
def clock_text(t):
    for rx, rep in CLOCK_TEXT:
        t = rx.sub(rep, t)
    return TRAIN_PROGRESS.sub("", t)
# A bundle manifest's entry for the training summary: its size and checksum follow the rate the
# summary records (the summary itself is compared, normalised, on its own).
CLOCK_PART = {"train.json"}
def walk(o, key=""):
    if isinstance(o, dict) and key in CLOCK_PART:
        return {k: "<clock>" for k in o}
    if isinstance(o, dict):
        return {k: ("<clock>" if CLOCK_KEY.search(k) else walk(v, k)) for k, v in o.items()}
    if isinstance(o, list):
        return [walk(v) for v in o]
    if isinstance(o, str):
        return clock_text(o)
    return o
if text.lstrip()[:1] in ("{", "["):
    try:
        sys.stdout.write(json.dumps(walk(json.loads(text)), indent=1)); sys.exit(0)
    except ValueError:
        pass
sys.stdout.write(clock_text(text))
PY
}

cmd_compare() {
  local a=$1 b=$2 diffs=0 same=0
  [ -d "$a" ] && [ -d "$b" ] || { echo "compare: two folders expected" >&2; exit 1; }
  local files
  files=$( (cd "$a" && find . -type f; cd "$b" && find . -type f) | sort -u)
  while IFS= read -r f; do
    f=${f#./}
    if [ ! -f "$a/$f" ] || [ ! -f "$b/$f" ]; then
      echo "only in $([ -f "$a/$f" ] && echo "$a" || echo "$b"): $f"; diffs=$((diffs + 1)); continue
    fi
    if cmp -s "$a/$f" "$b/$f"; then same=$((same + 1)); continue; fi
    case "$f" in
      *.txt|*.json|*.csv|*.html|*.md|*.log|*.err)
        if cmp -s <(normalise "$a/$f") <(normalise "$b/$f"); then
          same=$((same + 1)); echo "same after normalising: $f"; continue
        fi
        echo "DIFFERS: $f"; diff <(normalise "$a/$f") <(normalise "$b/$f") | head -10 || true ;;
      *) echo "DIFFERS (binary): $f" ;;
    esac
    diffs=$((diffs + 1))
  done <<< "$files"
  echo "$same files identical, $diffs differ"
  [ "$diffs" -eq 0 ]
}

cmd_run() {
  local O=$1 C=${2:-$ROOT/build/clinfm}
  C=$(cd "$(dirname "$C")" && pwd)/$(basename "$C")
  [ -e "$O" ] && { echo "run: $O exists" >&2; exit 1; }
  mkdir -p "$(dirname "$O")"
  local FINAL
  FINAL=$(cd "$(dirname "$O")" && pwd -P)/$(basename "$O")
  # Outputs name their paths (stores keep their input's path, logs their output's), so every run
  # works in the same folder, one run at a time, and moves the result to OUTDIR at the end.
  exec 9> /tmp/clinfm-compare.lock
  flock 9
  O=/tmp/clinfm-compare.run
  rm -rf "$O"; mkdir -p "$O"
  export CLINFM_DATA=$(cd "${CLINFM_DATA:-$ROOT/../shared/data}" && pwd -P) CLINFM_NO_PROGRESS=1
  export CLINFM_SHARE=$ROOT OPENBLAS_NUM_THREADS=1
  local D=$CLINFM_DATA W=$O/.work
  mkdir -p "$W"
  cd "$ROOT"
  step() { local name=$1; shift; "$@" > "$O/$name.txt" 2> "$O/$name.err" || echo "exit $?" >> "$O/$name.err"; }

  # Sources: a synthetic population, the MIMIC-IV demo, OMOP, Synthea bundles and bulk NDJSON.
  step synth "$C" synth --patients 300 --seed 3 --start 2012 --end 2021 --threads 2 --truth-paths 2 \
    --notes --out "$O/syn"
  step ingest_synth "$C" ingest --format fhir --input "$O/syn/fhir" --out "$O/s.store" --report "$O/s.report.json"
  step ingest_mimic "$C" ingest --mapping mappings/mimic-iv.map --input "$D/mimic-iv-demo" --out "$O/m.store" \
    --report "$O/m.report.json"
  step ingest_omop "$C" ingest --mapping mappings/omop-cdm.map --input "$D/omop-gibleed" --out "$O/o.store" --quiet
  mkdir -p "$W/bundles"
  local bundles=("$D"/synthea-fhir-r4/*.json.gz) # glob order is sorted
  for f in "${bundles[@]:0:12}"; do ln -s "$f" "$W/bundles/"; done
  step ingest_bundles "$C" ingest --format fhir --input "$W/bundles" --out "$O/b.store"
  step ingest_bulk "$C" ingest --format fhir --input "$D/synthea-bulk-ndjson" --out "$O/n.store" --quiet
  step inspect_mimic "$C" inspect "$O/m.store" --verify
  step inspect_mimic_json "$C" inspect "$O/m.store" --json
  step inspect_subject "$C" inspect "$O/m.store" --subject 10000032 --limit 40
  step export_mimic "$C" export --format meds-csv "$O/m.store" --out "$O/meds"

  # De-identification, with a fixed key (keygen draws a random one).
  printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$O/k.key"
  step deid_mimic "$C" deid "$O/m.store" --out "$O/d.store" --key "$O/k.key" --report "$O/d.report.json"
  step deid_synth "$C" deid "$O/s.store" --out "$O/ds.store" --key "$O/k.key" --text surrogate --quiet
  cat > "$W/note.txt" <<'EOF'
Discharge summary (fictional). Patient John Q. Smithers, MRN 4482913, seen at Riverside General
on 03/14/2089 by Dr. Alvarez. Phone (617) 555-0182. Lives at 12 Elm Street, Springfield, MA 01103.
Follow up in 2 weeks; call 617-555-0199 if fever > 38.5 C. Age 93.
EOF
  step deid_text "$C" deid-text --in "$W/note.txt"
  step deid_text_explain "$C" deid-text --in "$W/note.txt" --explain
  step deid_text_surrogate "$C" deid-text --in "$W/note.txt" --surrogate --shift-days -40
  step deid_notes "$C" deid-notes --out "$O/notes.json" --n 40 --seed 2
  step deid_eval_notes "$C" deid-eval --corpus "$O/notes.json" --format presidio --json
  step deid_eval_synth "$C" deid-eval --corpus "$O/syn/notes/gold.presidio.json" --format presidio
  step deid_eval_dev "$C" deid-eval --corpus "$D/deid-dev/presidio-synth-dev.json" --format presidio --records 0-199

  # Timelines, a few training steps (and a resumed run), labels, evaluation.
  step vocab "$C" vocab --store "$O/d.store" --out "$O/d.vocab" --shards "$O/shards" --json
  step tokens "$C" tokens --store "$O/m.store" --vocab "$O/d.vocab" --subject 10000032 --limit 20 --ids
  local TR=(--split 50/20/30 --layers 1 --d-model 32 --heads 2 --context 64 --batch 8 --lr 3e-3
            --eval-batches 2 --threads 2)
  step train "$C" train --store "$O/d.store" --out "$O/m.model" "${TR[@]}" --steps 40
  step train_part "$C" train --store "$O/d.store" --out "$O/r.model" "${TR[@]}" --steps 30 --stop-after 15
  step train_resume "$C" train --store "$O/d.store" --out "$O/r.model" --resume --threads 2
  # train's other paths: a fold, a given vocabulary on a reused preparation, continuous inputs with
  # a value loss, early stopping that keeps an earlier step, --init, a finished model's held_out
  # evaluated whole, and refusals (a resume's other seed, --values against the vocabulary).
  local TS=(--layers 1 --d-model 32 --heads 2 --context 64 --batch 4 --lr 3e-3 --eval-batches 2 --threads 2)
  step train_fold "$C" train --store "$O/d.store" --out "$O/f.model" "${TS[@]}" --steps 6 --fold 1/5
  step train_vocab "$C" train --store "$O/d.store" --out "$O/fv.model" --vocab "$O/f.model/vocab.bin" \
    --shards "$O/f.model.shards" "${TS[@]}" --steps 4 --fold 1/5
  step train_inputs "$C" train --store "$O/d.store" --out "$O/in.model" --values embed --inputs --value-loss 0.5 \
    "${TS[@]}" --steps 6 --split 60/20/20
  step train_early "$C" train --store "$O/d.store" --out "$O/es.model" --shards "$O/in.model.shards" --values embed \
    --early-stop 6 --eval-every 1 "${TS[@]}" --steps 10 --lr 0.3 --min-lr 0.3 --warmup 0 --split 60/20/20
  step train_init "$C" train --store "$O/d.store" --out "$O/it.model" --init "$O/f.model" "${TS[@]}" --steps 4 \
    --split 70/15/15
  step train_held_all "$C" train --store "$O/d.store" --out "$O/f.model" --resume --held-out-batches 0 --threads 2 \
    --fold 1/5
  step train_refuse_seed "$C" train --store "$O/d.store" --out "$O/f.model" --resume --seed 9 --fold 1/5
  step train_refuse_values "$C" train --store "$O/d.store" --out "$O/vm.model" --vocab "$O/f.model/vocab.bin" \
    --values embed "${TS[@]}" --steps 2 --fold 1/5
  local SP=(--split-fractions 50/20/30)
  step label_readm "$C" label --task tasks/readmission_30d.task --store "$O/d.store" --out "$O/readm.csv" "${SP[@]}"
  step label_mort "$C" label --task tasks/in_hospital_mortality.task --store "$O/d.store" --out "$O/mort.csv"
  step label_ckd "$C" label --task tasks/new_onset_ckd.task --store "$O/s.store" --out "$O/ckd.csv" --target competing
  step label_synth "$C" label --task tasks/new_onset_hypertension.task --store "$O/s.store" --out "$O/htn.csv"
  step eval_model "$C" eval --task tasks/readmission_30d.task --store "$O/d.store" --model "$O/m.model" \
    --bootstrap 100 --seed 2 --rollouts 4 --max-new-tokens 48 "${SP[@]}" --out "$O/ev"
  step eval_ceiling "$C" eval --task tasks/new_onset_hypertension.task --store "$O/s.store" --bootstrap 50 \
    --ceiling "$O/syn/truth/new_onset_hypertension.csv" --out "$O/evc"

  # The service: discovery, tasks, a stored patient's model risk, a hook with prefetch, /v1/risk.
  step keygen_serve "$C" audit keygen "$W/serve.key"
  "$PY" - "$ROOT/docs/serve-example.json" "$W" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = sys.argv[2]
c.update(database=t + "/serve.db", secret_file=t + "/serve.key", port=0)
# The reference model's configuration (both tasks), and the model's (its one head); thresholds
# low enough that the hook answers with cards.
for t_ in c["tasks"]:
    t_["warning"], t_["critical"] = 0.001, 0.5
json.dump(c, open(t + "/serve_ref.json", "w"))
c.pop("reference_model", None)
c["tasks"] = [{"id": "readmission_30d", "title": "30-day readmission", "warning": 0.01, "critical": 0.5}]
for s in c["services"]:
    s["tasks"] = ["readmission_30d"]
json.dump(c, open(t + "/serve.json", "w"))
PY
  "$PY" - "${bundles[0]}" "$W" <<'PY'
import gzip, json, sys
b = json.load(gzip.open(sys.argv[1])); t = sys.argv[2]
pat = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")
keys = {"Condition": "conditions", "MedicationRequest": "medications", "Observation": "observations",
        "Encounter": "encounters", "Procedure": "procedures"}
pf = {"patient": pat, **{k: None for k in keys.values()}}
for e in b["entry"]:
    r = e["resource"]
    if r["resourceType"] not in keys: continue
    key = keys[r["resourceType"]]
    if pf[key] is None: pf[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    pf[key]["entry"].append({"resource": r})
req = {"hookInstance": "5e1f6a7e-52a7-4bd9-9f6c-0c5f3e1d2a11", "hook": "patient-view",
       "context": {"userId": "Practitioner/1", "patientId": pat["id"]}, "prefetch": pf}
json.dump(req, open(t + "/hook.json", "w")); json.dump(b, open(t + "/bundle.json", "w"))
PY
  local SID
  SID=$(sed -n 2p "$O/readm.csv" | cut -d, -f1)
  serve_requests() { # NAME CONFIG [serve options]: start a service, ask it, stop it
    local name=$1 cfg=$2 key port spid; shift 2
    rm -f "$W/port" "$W"/serve.db*
    key=$("$C" token create --config "$cfg" --name compare --role clinician 2>/dev/null)
    "$C" serve --config "$cfg" --port 0 --port-file "$W/port" --quiet "$@" 2> "$O/${name}_log.err" &
    spid=$!
    for _ in $(seq 300); do [ -s "$W/port" ] && break; sleep 0.1; done
    port=$(tr -d '\n' < "$W/port")
    local U="http://127.0.0.1:$port" H=(-sS --max-time 60 -H "Authorization: Bearer $key")
    curl "${H[@]}" "$U/cds-services" > "$O/${name}_discovery.json" || true
    curl "${H[@]}" "$U/v1/tasks" > "$O/${name}_tasks.json" || true
    curl "${H[@]}" -H "Content-Type: application/json" --data-binary @"$W/hook.json" \
      "$U/cds-services/clinfm-patient-view" > "$O/${name}_hook.json" || true
    curl "${H[@]}" -H "Content-Type: application/json" --data-binary @"$W/bundle.json" \
      "$U/v1/risk?task=readmission_30d" > "$O/${name}_risk_bundle.json" || true
    [ $# -gt 0 ] && { curl "${H[@]}" "$U/v1/patients/$SID/risk" > "$O/${name}_risk_stored.json" || true; }
    kill -TERM "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  }
  serve_requests serve_ref "$W/serve_ref.json"
  serve_requests serve_model "$W/serve.json" --store "$O/d.store" --model "$O/m.model"
  rm -rf "$W"
  mv "$O" "$FINAL"
  echo "outputs in $FINAL ($(find "$FINAL" -type f | wc -l) files)"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  compare) shift; cmd_compare "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 1 ;;
esac
