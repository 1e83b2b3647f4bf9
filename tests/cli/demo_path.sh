#!/usr/bin/env bash
# `clinfm demo`, the whole path, small (--quick: a tiny model and one baseline; 200 generated
# patients, 10 training steps, one task): no data directory needed. Checked here independently of the demo's own messages:
# - the chart opened is a living patient's; the patient-view answer holds exactly one card (uuid, summary under 140 characters, an
#   indicator, a risk in the summary, no suggestions) scored by the demo's model, for the task;
# - the feedback on that card is in the service's database (outcome accepted, the card's uuid)
#   and in the exported CSV;
# - the audit trail: `clinfm audit verify` (run again here) finds it intact, and it holds the hook
#   call and the feedback, both answered 200, under the demo's API key;
# - the service was stopped (its port no longer answers) and left an orderly stop;
# - the evaluation report has the ceiling row; secrets are readable by their owner only;
# - a missing --data folder, a foreign non-empty --out and an unknown task are clear errors.
set -euo pipefail
: "${CLINFM:?set CLINFM to the clinfm binary}"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CLINFM" demo --quick --patients 200 --steps 10 --tasks long_stay_7d_fhir --out "$T/demo" > "$T/demo.txt" 2>&1 \
  || { tail -30 "$T/demo.txt"; fail "clinfm demo exited non-zero"; }
D=$T/demo
grep -q '^\$ clinfm synth --patients 200' "$T/demo.txt" || fail "the synth step's command is not printed"
grep -q '^\$ clinfm serve --config' "$T/demo.txt" || fail "the serve step's command is not printed"
grep -q "Demo finished" "$T/demo.txt" || fail "no closing summary"
grep -q "eval/long_stay_7d_fhir/report.html" "$T/demo.txt" || fail "the summary does not say what to open first"

$PY - "$D" <<'PY'
import csv, json, re, sqlite3, sys
D = sys.argv[1]
ans = json.load(open(f"{D}/service/cards.json"))
cards = ans["cards"]
assert len(cards) == 1, f"expected one card, got {len(cards)}"
c = cards[0]
assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", c["uuid"]), c["uuid"]
assert len(c["summary"]) < 140 and re.search(r"\d+(\.\d+)?% risk", c["summary"]), c["summary"]
assert c["indicator"] in ("info", "warning", "critical"), c["indicator"]
assert "suggestions" not in c and "links" not in c, c.keys()
assert c["source"]["topic"]["code"] == "long_stay_7d_fhir", c["source"]
hook = json.load(open(f"{D}/service/hook-request.json"))
assert hook["hook"] == "patient-view" and hook["context"]["patientId"], hook
# the chart opened is a living patient's
pats = {p["id"]: p for p in map(json.loads, open(f"{D}/synth/fhir/Patient.000.ndjson"))}
pid = hook["context"]["patientId"]
assert pid in pats and "deceasedDateTime" not in pats[pid], "the chart is not a living generated patient's"

db = sqlite3.connect(f"{D}/service/serve.db")
card_rows = db.execute("select uuid, task, model from cards").fetchall()
assert card_rows == [(c["uuid"], "long_stay_7d_fhir", "model")], card_rows
fb = db.execute("select card_uuid, outcome, principal from feedback").fetchall()
assert len(fb) == 1 and fb[0][0] == c["uuid"] and fb[0][1] == "accepted", fb
audit = db.execute("select principal, route, status from audit order by seq").fetchall()
calls = [(r, s) for p, r, s in audit if p == fb[0][2]]
assert ("/cds-services/{id}", 200) in calls and ("/cds-services/{id}/feedback", 200) in calls, audit
rows = list(csv.DictReader(open(f"{D}/service/feedback.csv")))
assert len(rows) == 1 and rows[0]["card"] == c["uuid"] and rows[0]["outcome"] == "accepted", rows
m = json.load(open(f"{D}/eval/long_stay_7d_fhir/metrics.json"))
names = {p["name"] for p in m["predictors"]}
assert {"ceiling", "finetuned", "logreg"} <= names, names
print("card, feedback and audit rows: ok")
PY
grep -q ceiling "$D/eval/long_stay_7d_fhir/report.html" || fail "no ceiling row on the report"
"$CLINFM" audit verify --config "$D/service/serve.json" --anchor "$D/service/anchors.log" > "$T/verify.txt" \
  || fail "audit verify: $(cat "$T/verify.txt")"
grep -q "audit chain intact" "$T/verify.txt" || fail "audit verify did not say intact"
grep -q "1 cards, 1 feedback" "$T/verify.txt" || fail "audit verify did not count the card and the feedback: $(cat "$T/verify.txt")"
grep -q "stopping" "$D/service/serve.log" || fail "the service did not log an orderly stop"
PORT=$(cat "$D/service/port")
if curl -s --max-time 3 "http://127.0.0.1:$PORT/healthz" > /dev/null 2>&1; then fail "the service still answers on $PORT"; fi
for f in private/deid.key private/serve.key private/api.key service/serve.db; do
  [ "$(stat -c %a "$D/$f")" = 600 ] || fail "$f is not mode 600"
done

# clear errors, before any work
if "$CLINFM" demo --data "$T/no-such-dir" --out "$T/x" > /dev/null 2> "$T/err.txt"; then fail "a missing --data folder was accepted"; fi
grep -q "no-such-dir: no such folder" "$T/err.txt" || fail "missing --data: $(cat "$T/err.txt")"
[ ! -e "$T/x" ] || fail "the demo wrote into --out before checking --data"
mkdir -p "$T/foreign" && echo keep > "$T/foreign/file"
if "$CLINFM" demo --out "$T/foreign" > /dev/null 2> "$T/err.txt"; then fail "a foreign folder was accepted"; fi
grep -q "was not made by clinfm demo" "$T/err.txt" || fail "foreign --out: $(cat "$T/err.txt")"
[ -f "$T/foreign/file" ] || fail "the demo deleted a file it did not make"
if "$CLINFM" demo --tasks no_such_task --out "$T/y" > /dev/null 2> "$T/err.txt"; then fail "an unknown task was accepted"; fi
grep -q "no_such_task: no such task" "$T/err.txt" || fail "unknown task: $(cat "$T/err.txt")"
echo "demo path: ok"
