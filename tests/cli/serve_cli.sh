#!/usr/bin/env bash
# CLI test of the service: audit keygen, token create/list/revoke, `clinfm serve` over TLS on a
# loopback port (discovery, health, patient-view with prefetch, feedback, /v1/risk, a revoked
# key), the anchor timer (newest rows deleted from the database of an idle, running server are
# caught, also with a restored head file through --anchor), clean stop on SIGTERM, audit verify
# (intact, then after tampering with a row), feedback export, and file modes (the database is
# created 0600; serve refuses a database or TLS key others can read). Needs CLINFM (the binary),
# curl, openssl and /usr/bin/python3; no data directory (the patient is one `clinfm synth` makes).
set -euo pipefail
: "${CLINFM:?set CLINFM to the clinfm binary}"
ROOT=${CLINFM_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
"$CLINFM" synth --patients 30 --seed 2 --truth-paths 0 --quiet --out "$T/syn"
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/serve.log" ] && tail -5 "$T/serve.log" >&2; exit 1; }

"$CLINFM" audit keygen "$T/serve.key" 2>/dev/null
[ "$(stat -c %a "$T/serve.key")" = 600 ] || fail "secret file is not mode 600"
"$CLINFM" audit keygen "$T/serve.key" 2>/dev/null && fail "keygen overwrote a secret"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

$PY - "$ROOT/docs/serve-example.json" "$T" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); t = sys.argv[2]
c.update(database=t + "/serve.db", secret_file=t + "/serve.key", port=0,
         tls={"cert": t + "/tls.crt", "key": t + "/tls.key"},
         audit={"anchor_interval_s": 1, "anchor_file": t + "/anchors.log"})
c["services"][0]["show_info"] = True
json.dump(c, open(t + "/serve.json", "w"))
EOF

chmod 600 "$T/tls.key"
CLIN=$("$CLINFM" token create --config "$T/serve.json" --name "ward 3" --role clinician 2>/dev/null)
[ "$(stat -c %a "$T/serve.db")" = 600 ] || fail "the database is not mode 600"
OLD=$("$CLINFM" token create --config "$T/serve.json" --name old --role clinician 2>/dev/null)
[[ "$CLIN" =~ ^cfk_[0-9a-f]{16}_[0-9a-f]{64}$ ]] || fail "token format"
OLD_ID=$(echo "$OLD" | cut -d_ -f2)
"$CLINFM" token create --config "$T/serve.json" --name x --role root >/dev/null 2>&1 && fail "bad role accepted"
"$CLINFM" token revoke --config "$T/serve.json" "$OLD_ID" 2>/dev/null
LIST=$("$CLINFM" token list --config "$T/serve.json")
echo "$LIST" | grep -q "ward 3" || fail "list lacks the key"
echo "$LIST" | grep "$OLD_ID" | grep -qv " - " || fail "revoked key not shown as revoked"
echo "$LIST" | grep -q "${CLIN#cfk_*_}" && fail "list shows a secret"

"$CLINFM" serve --config "$T/serve.json" --port 0 --port-file "$T/port" 2>"$T/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "server did not start"
PORT=$(tr -d '\n' < "$T/port")
URL="https://127.0.0.1:$PORT"
CURL=(curl -sS --max-time 20 --cacert "$T/tls.crt")

"${CURL[@]}" "$URL/cds-services" | grep -q '"hook":"encounter-discharge"' || fail "discovery"
"${CURL[@]}" "$URL/healthz" | grep -q '"status":"ok"' || fail "health"
curl -sS --max-time 5 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && fail "plain HTTP answered on the TLS port"

$PY - "$T/syn/fhir" "$T" <<'EOF'
import glob, json, sys
t = sys.argv[2]
res = [json.loads(l) for f in sorted(glob.glob(sys.argv[1] + "/*.ndjson")) for l in open(f)]
def owner(r):
    for f in ("subject", "patient"):
        if f in r and "reference" in r[f]: return r[f]["reference"].split("/")[-1].split(":")[-1]
n = {}
for r in res: n[owner(r)] = n.get(owner(r), 0) + 1
# the generated patient with the most resources, as one Bundle (the layout of a Synthea export)
pat = max((r for r in res if r["resourceType"] == "Patient"), key=lambda p: n.get(p["id"], 0))
b = {"resourceType": "Bundle", "type": "collection",
     "entry": [{"resource": r} for r in res if r is pat or owner(r) == pat["id"]]}
open(t + "/family", "w").write(pat["name"][0]["family"])
# the service's default prefetch templates, answered as a CDS client would: null for no data
keys = {"Condition": "conditions", "MedicationRequest": "medications", "Observation": "observations",
        "Encounter": "encounters", "Procedure": "procedures"}
pf = {"patient": pat, **{k: None for k in keys.values()}}
for e in b["entry"]:
    r = e["resource"]
    if r["resourceType"] not in keys: continue
    for f in ("subject", "patient"):
        if f in r and "reference" in r[f]: r[f]["reference"] = "Patient/" + pat["id"]
    key = keys[r["resourceType"]]
    if pf[key] is None: pf[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    pf[key]["entry"].append({"resource": r})
req = {"hookInstance": "5e1f6a7e-52a7-4bd9-9f6c-0c5f3e1d2a11", "hook": "patient-view",
       "context": {"userId": "Practitioner/1", "patientId": pat["id"]}, "prefetch": pf}
json.dump(req, open(t + "/hook.json", "w"))
json.dump(b, open(t + "/bundle.json", "w"))
open(t + "/pid", "w").write(pat["id"])
EOF
PID=$(cat "$T/pid")
H=(-H "Authorization: Bearer $CLIN" -H "Content-Type: application/json")
"${CURL[@]}" "${H[@]}" --data-binary @"$T/hook.json" "$URL/cds-services/clinfm-patient-view" > "$T/cards.json"
CARD=$($PY -c 'import json,sys; c=json.load(open(sys.argv[1]))["cards"]; assert len(c)==1 and len(c[0]["summary"])<140 and "suggestions" not in c[0]; print(c[0]["uuid"])' "$T/cards.json") || fail "patient-view cards: $(head -c 300 "$T/cards.json")"
printf '{"feedback":[{"card":"%s","outcome":"overridden","overrideReason":{"reason":{"code":"disagree","system":"urn:clinfm:override-reason"}},"outcomeTimestamp":"2026-11-22T09:00:00Z"}]}' "$CARD" > "$T/fb.json"
"${CURL[@]}" "${H[@]}" --data-binary @"$T/fb.json" "$URL/cds-services/clinfm-patient-view/feedback" | grep -q '"recorded":1' || fail "feedback"
"${CURL[@]}" "${H[@]}" --data-binary @"$T/bundle.json" "$URL/v1/risk?task=readmission_30d" | grep -q '"task":"readmission_30d"' || fail "/v1/risk"
CODE=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OLD" "$URL/v1/tasks")
[ "$CODE" = 401 ] || fail "revoked key got $CODE"
CODE=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/v1/tasks")
[ "$CODE" = 401 ] || fail "missing token got $CODE"

# the anchor timer: the idle server anchors its tail within a second, so deleting the newest rows
# from the live database is caught while it runs (and at its next start)
sleep 1.6
"$CLINFM" audit verify --config "$T/serve.json" >/dev/null || fail "verify on the live database"
cp "$T/serve.db-head" "$T/old-head"
"${CURL[@]}" -H "Authorization: Bearer $CLIN" "$URL/v1/tasks" >/dev/null
"${CURL[@]}" -H "Authorization: Bearer $CLIN" "$URL/v1/tasks" >/dev/null
sleep 1.6
ROWS=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from audit").fetchone()[0])' "$T/serve.db")
$PY -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("delete from audit where seq > ?", (int(sys.argv[2]) - 2,)); d.commit()' "$T/serve.db" "$ROWS"
if "$CLINFM" audit verify --config "$T/serve.json" >/dev/null 2>"$T/verify.err"; then fail "newest rows deleted from an idle server's database not detected"; fi
grep -q "newest rows were deleted" "$T/verify.err" || fail "verify did not say the newest rows were deleted: $(cat "$T/verify.err")"
# a restored older head file hides it from the head check, not from the anchor file
cp "$T/old-head" "$T/serve.db-head"
if "$CLINFM" audit verify --config "$T/serve.json" --anchor "$T/anchors.log" >/dev/null 2>"$T/verify.err"; then fail "--anchor missed the deletion"; fi
grep -q "anchors.log anchored row" "$T/verify.err" || fail "verify --anchor did not name the anchor: $(cat "$T/verify.err")"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server did not exit cleanly"
SERVER_PID=""
grep -q "stopping" "$T/serve.log" || fail "no orderly stop"
grep -q "$PID" "$T/serve.log" && fail "the log holds a patient id"
grep -q "$(cat "$T/family")" "$T/serve.log" && fail "the log holds a name"
grep -q "audit anchor:.*deleted" "$T/serve.log" || fail "the server did not notice the deletion"
# a server does not start over a chain that lost its anchored rows
if "$CLINFM" serve --config "$T/serve.json" --port 0 2>"$T/serve2.log"; then fail "serve started over a truncated chain"; fi
grep -q "refusing to start" "$T/serve2.log" || fail "no refusal: $(tail -2 "$T/serve2.log")"

# a fresh database for the rest: verify, export, tampering, modes
rm -f "$T"/serve.db* "$T/anchors.log"
$PY - "$T" <<'EOF2'
import json, sys
t = sys.argv[1]; c = json.load(open(t + "/serve.json")); del c["audit"]
json.dump(c, open(t + "/serve.json", "w"))
EOF2
CLIN=$("$CLINFM" token create --config "$T/serve.json" --name "ward 3" --role clinician 2>/dev/null)
"$CLINFM" serve --config "$T/serve.json" --port 0 --port-file "$T/port2" 2>"$T/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$T/port2" ] && break; sleep 0.1; done
[ -s "$T/port2" ] || fail "server did not start again"
URL="https://127.0.0.1:$(tr -d '\n' < "$T/port2")"
H=(-H "Authorization: Bearer $CLIN" -H "Content-Type: application/json")
"${CURL[@]}" "${H[@]}" --data-binary @"$T/hook.json" "$URL/cds-services/clinfm-patient-view" > "$T/cards.json"
CARD=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["cards"][0]["uuid"])' "$T/cards.json") || fail "cards after restart"
printf '{"feedback":[{"card":"%s","outcome":"overridden","overrideReason":{"reason":{"code":"disagree","system":"urn:clinfm:override-reason"}},"outcomeTimestamp":"2026-11-22T09:00:00Z"}]}' "$CARD" > "$T/fb.json"
"${CURL[@]}" "${H[@]}" --data-binary @"$T/fb.json" "$URL/cds-services/clinfm-patient-view/feedback" | grep -q '"recorded":1' || fail "feedback"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server did not exit cleanly"
SERVER_PID=""

"$CLINFM" audit verify --config "$T/serve.json" | grep -q "audit chain intact" || fail "verify"
"$CLINFM" feedback export --config "$T/serve.json" --format jsonl --output "$T/fb.jsonl"
grep -q '"reason_code":"disagree"' "$T/fb.jsonl" || fail "export"
grep -q '"task":"mortality_1y"' "$T/fb.jsonl" || fail "export lacks the card's task"
[ "$(stat -c %a "$T/fb.jsonl")" = 600 ] || fail "the export is readable by others"

$PY -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("update audit set latency_us = latency_us + 1 where seq = 3"); d.commit()' "$T/serve.db"
if "$CLINFM" audit verify --config "$T/serve.json" >/dev/null 2>"$T/verify.err"; then fail "tampering not detected"; fi
grep -q "row 3" "$T/verify.err" || fail "verify did not name the row"

# file modes: a database or TLS key that others can read is refused
chmod 644 "$T/serve.db"
if "$CLINFM" serve --config "$T/serve.json" --port 0 2>"$T/serve3.log"; then fail "serve started with a world-readable database"; fi
grep -q "readable by its owner only" "$T/serve3.log" || fail "no mode message: $(tail -1 "$T/serve3.log")"
chmod 600 "$T/serve.db"
chmod 644 "$T/tls.key"
if "$CLINFM" serve --config "$T/serve.json" --port 0 2>"$T/serve3.log"; then fail "serve started with a world-readable TLS key"; fi
grep -q "TLS private key must be readable by its owner only" "$T/serve3.log" || fail "no TLS key message: $(tail -1 "$T/serve3.log")"
echo "serve cli: ok"
