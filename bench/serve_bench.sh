#!/usr/bin/env bash
# Load benchmark of `clinfm serve`: wrk on loopback against the patient-view hook for a Synthea
# patient of about 500 events, looked up in a store of all 615 bundled patients and scored by the
# reference predictor (direct read-out: one logistic score and exact occlusion per request), with
# API-key authentication, rate limiting, audit rows (SQLite WAL) and metrics all on.
#
# usage: bash bench/serve_bench.sh [SECONDS]    (default 20; 120 for the 2-minute run)
# env:   CLINFM (default build/clinfm), CONNECTIONS (default 16), THREADS (server, default 2),
#        PREFETCH=1 to send the patient's FHIR data as prefetch instead (about 300 KB per request),
#        MODEL=path to score with that foundation model (`serve --model`; its head
#        heads/$TASK.json must be in the bundle) instead of the reference predictor,
#        TASK (with MODEL; default new_onset_heart_failure) the task both services score,
#        CARD_CACHE=N passed as --card-cache N (0: every request is scored afresh; unset: the
#        configuration's default, 1024).
# Every request is for the same patient and record, so with the card cache on all but the first
# are cache hits; CARD_CACHE=0 measures the scoring itself.
# Prints requests/s, latency p50/p99, errors, resident memory at half-time and at the end, and
# verifies the audit trail afterwards. Both processes run under nice; the machine's other work
# shows up as noise, so quote the figures with the date and load.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$(pwd)
SYNTHEA=$(bench_data synthea-fhir-r4)
DUR=${1:-20}
CLINFM=${CLINFM:-$ROOT/build/clinfm}
CONN=${CONNECTIONS:-16}
SRV_THREADS=${THREADS:-2}
PY=/usr/bin/python3
PATIENT_FILE="$SYNTHEA/Harland_DuBuque_64e50922-047c-4b7a-9a9e-75c85ff2144f.json.gz"
command -v wrk >/dev/null || { echo "serve_bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$CLINFM" ] || { echo "serve_bench: $CLINFM not built" >&2; exit 1; }

T=$(mktemp -d /tmp/clinfm-serve-bench.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT

"$CLINFM" ingest --format fhir --input "$SYNTHEA" --out "$T/all.store" >/dev/null 2>&1
"$CLINFM" audit keygen "$T/serve.key" 2>/dev/null
$PY - "$ROOT/docs/serve-example.json" "$T" "$SRV_THREADS" "${MODEL:+${TASK:-new_onset_heart_failure}}" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); t = sys.argv[2]; task = sys.argv[4]
c.update(database=t + "/serve.db", secret_file=t + "/serve.key", port=0, threads=int(sys.argv[3]),
         access_log=False)
if task:  # the model scores the task its head was fitted for, on both services
    c["tasks"] = [{"id": task, "title": task.replace("_", " "), "warning": 0.2, "critical": 0.5}]
    for s in c["services"]: s["tasks"] = [task]
c["limits"].update(rate_per_minute=1e9, burst=1e9)
c["services"][0]["show_info"] = True   # a card on every call, so every call does the full work
json.dump(c, open(t + "/serve.json", "w"))
EOF
KEY=$("$CLINFM" token create --config "$T/serve.json" --name bench --role service 2>/dev/null)

$PY - "$PATIENT_FILE" "$T" "${PREFETCH:-0}" <<'EOF'
import gzip, json, sys
b = json.load(gzip.open(sys.argv[1])); t = sys.argv[2]; prefetch = sys.argv[3] == "1"
pat = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")
req = {"hookInstance": "0b3c5d1e-8a8e-4d7e-9f55-6f0e7e9b2c10", "hook": "patient-view",
       "context": {"userId": "Practitioner/bench", "patientId": pat["id"]}}
if prefetch:  # the default templates' keys, null for a search without data
    keys = {"Condition": "conditions", "MedicationRequest": "medications", "Observation": "observations",
            "Encounter": "encounters", "Procedure": "procedures"}
    pf = {"patient": pat, **{k: None for k in keys.values()}}
    for e in b["entry"]:
        r = e["resource"]
        if r["resourceType"] not in keys: continue
        for f in ("subject", "patient"):
            if f in r and "reference" in r[f]: r[f]["reference"] = "Patient/" + pat["id"]
        k = keys[r["resourceType"]]
        if pf[k] is None: pf[k] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        pf[k]["entry"].append({"resource": r})
    req["prefetch"] = pf
json.dump(req, open(t + "/body.json", "w"))
EOF
cat > "$T/post.lua" <<EOF
local f = io.open("$T/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
EOF

nice "$CLINFM" serve --config "$T/serve.json" --store "$T/all.store" --port 0 \
  --port-file "$T/port" --quiet ${MODEL:+--model "$MODEL"} ${CARD_CACHE:+--card-cache "$CARD_CACHE"} \
  2>"$T/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "serve_bench: server did not start" >&2; cat "$T/serve.log" >&2; exit 1; }
URL="http://127.0.0.1:$(tr -d '\n' < "$T/port")/cds-services/clinfm-patient-view"
# one call to check it works and to show the card
curl -sS --max-time 10 -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  --data-binary @"$T/body.json" "$URL" > "$T/first.json"
$PY -c 'import json,sys; c=json.load(open(sys.argv[1]))["cards"]; assert len(c)==1; print("card:", c[0]["summary"])' "$T/first.json"
PID_=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["context"]["patientId"])' "$T/body.json")
EVENTS=$(curl -sS --max-time 10 -H "Authorization: Bearer $KEY" "${URL%/cds-services/*}/v1/patients/$PID_/risk" |
  $PY -c 'import json,sys; print(json.load(sys.stdin)["patient"]["events"])')

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
HALF=$((DUR / 2))
nice wrk -t1 -c"$CONN" -d"${DUR}s" --latency --timeout 5s -s "$T/post.lua" "$URL" > "$T/wrk.txt" &
WRK_PID=$!
sleep "$HALF"; RSS1=$(rss_kb)
wait "$WRK_PID"; RSS2=$(rss_kb)

RPS=$(awk '/^Requests\/sec/ {print $2}' "$T/wrk.txt")
P50=$(awk '$1 == "50%" {print $2}' "$T/wrk.txt")
P99=$(awk '$1 == "99%" {print $2}' "$T/wrk.txt")
TOTAL=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
NON2XX=$(awk '/Non-2xx/ {print $NF}' "$T/wrk.txt"); NON2XX=${NON2XX:-0}
METRICS=$(curl -sS --max-time 10 -H "Authorization: Bearer $KEY" "${URL%/cds-services/*}/metrics")
HITS=$(awk '$1 == "clinfm_card_cache_hits_total" {print $2}' <<<"$METRICS")
MISSES=$(awk '$1 == "clinfm_card_cache_misses_total" {print $2}' <<<"$METRICS")
CAP=$(awk '$1 == "clinfm_card_cache_capacity" {print $2}' <<<"$METRICS")
SOCK=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$T/wrk.txt"); SOCK=${SOCK:-0}
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
VSTART=$(date +%s.%N)
VERIFY=$("$CLINFM" audit verify --config "$T/serve.json" 2>&1 | head -1)
VSEC=$(awk -v a="$VSTART" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')

SRC=$([ "${PREFETCH:-0}" = 1 ] && echo "prefetch of $(stat -c %s "$T/body.json") bytes" || echo "store lookup")
PRED=$([ -n "${MODEL:-}" ] && echo "model $(basename "$MODEL") (${TASK:-new_onset_heart_failure})" || echo "reference predictor")
echo "serve bench: patient-view, $SRC, $EVENTS events, $PRED, ${DUR}s, $CONN connections, $SRV_THREADS server threads, $(nproc) cores"
echo "  requests/s     $RPS   ($TOTAL requests)"
echo "  latency p50    $P50"
echo "  latency p99    $P99"
echo "  errors         $NON2XX non-2xx, $SOCK socket"
echo "  card cache     size $CAP: $HITS hits, $MISSES misses"
echo "  RSS at ${HALF}s    $((RSS1 / 1024)) MiB"
echo "  RSS at ${DUR}s    $((RSS2 / 1024)) MiB   (growth $(( (RSS2 - RSS1) / 1024 )) MiB)"
echo "  audit verify   $VERIFY  (${VSEC}s)"
