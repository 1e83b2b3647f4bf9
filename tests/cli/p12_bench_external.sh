#!/usr/bin/env bash
# bench/p12_eval.sh in its set-B form (train on all of one folder, evaluate on every stay of
# another), the command issue 13's held-apart set will be measured with, run end to end with
# QUICK=1 (tiny model; the figures mean nothing) on two disjoint folders of set A laid out as a
# challenge set is (set-a/ and Outcomes-a.txt). Checks what would make a set-B figure wrong: every
# evaluation stay is predicted and no other, the positives are the outcome file's deaths of those
# stays, no training patient is among them, the model trained on the training folder only (90%
# train, 10% tuning, nothing held out of it), the recipe's predictors and scores are all there,
# the four members of its ensemble (from scratch, pretrained on a few PhysioNet 2019 stays then
# adapted, and the bigger architecture both ways) were fine-tuned and averaged, and its auxiliary
# tasks were trained beside the main head. Run again, the command continues where it stopped.
set -euo pipefail
. tests/cli/lib.sh
need_data P12 physionet-2012
need_data P19 physionet-2019-sepsis-b
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
N_TRAIN=200
N_EVAL=120
# Each folder's outcome file holds its own stays only, as a challenge set's does (an outcome row
# is a stay of the store even without its record file).
for d in tr ev; do mkdir -p "$T/$d/set-a"; done
ls "$P12/set-a" | sort | sed -n "1,${N_TRAIN}p" | sed "s|^|$P12/set-a/|" | xargs ln -s -t "$T/tr/set-a"
ls "$P12/set-a" | sort | sed -n "$((N_TRAIN + 1)),$((N_TRAIN + N_EVAL))p" | sed "s|^|$P12/set-a/|" | xargs ln -s -t "$T/ev/set-a"
for d in tr ev; do
  ls "$T/$d/set-a" | sed 's/\.txt$//' > "$T/$d.ids"
  awk -F, 'NR == FNR { want[$1] = 1; next } FNR == 1 || ($1 in want)' "$T/$d.ids" "$P12/Outcomes-a.txt" > "$T/$d/Outcomes-a.txt"
done
mkdir -p "$T/p19"
ls "$P19" | sort | sed -n '/\.psv$/p' | sed -n 1,60p | sed "s|^|$P19/|" | xargs ln -s -t "$T/p19"
OUT=$T/out C=$CLINFM QUICK=1 THREADS=1 PRETRAIN=$T/p19 bash bench/p12_eval.sh "$T/tr" "$T/ev" > "$T/run.log" 2>&1 \
  || { tail -20 "$T/run.log"; echo "p12_eval.sh failed"; exit 1; }
# The deaths among the evaluation stays, from the outcome file itself.
DEATHS=$(awk -F, 'NR == FNR { want[$1] = 1; next } FNR > 1 && ($1 in want) && $6 == 1 { n++ } END { print n + 0 }' \
  "$T/ev.ids" "$P12/Outcomes-a.txt")
python3 - "$T/out" "$N_EVAL" "$DEATHS" <<'PY'
import json, sys
out, n_eval, deaths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pool = json.load(open(f"{out}/pool/pool.json"))
assert pool["rows"] == n_eval, ("evaluation rows", pool["rows"], n_eval)
assert pool["positives"] == deaths, ("positives", pool["positives"], deaths)
assert [r["held_out_rows"] for r in pool["runs"]] == [n_eval], pool["runs"]  # the four members joined
names = {p["name"] for p in pool["predictors"]}
for want in ("xgboost_values", "finetuned_e2e", "score_SAPS-I", "score_SOFA", "stack(finetuned_e2e+xgboost_values)"):
    assert want in names, ("predictor missing", want)
m = json.load(open(f"{out}/external/metrics.json"))
split = m["split"]
assert (split["train_percent"], split["tuning_percent"], split["held_out_percent"]) == (90, 10, 0), split
ov = m["model"]["overlap"]
assert ov["held_out_patients_checked"] == n_eval and ov["training_patients_among_them"] == 0, ov
assert m["model"]["evaluated_on_training_store"] is False
# The recipe's auxiliary tasks trained beside the main head, on the training folder's rows.
e2e = next(p for p in m["predictors"] if p["name"] == "finetuned_e2e")
aux = {a["task"]: a for a in e2e["settings"].get("auxiliary_tasks", [])}
assert set(aux) == {"physionet2012_death_30d", "physionet2012_long_stay"}, aux
assert all(0 < a["train_positives"] < a["train_rows_labelled"] for a in aux.values()), aux
# The other members (pre: the 2019 model adapted; big: the bigger architecture from scratch;
# pre-big: the bigger architecture's own 2019 model adapted), on the same rows, averaged in.
for member in ("pre", "big", "pre-big"):
    mm = json.load(open(f"{out}/external.{member}/metrics.json"))
    assert mm["split"] == split, (member, mm["split"], split)
    assert mm["model"]["overlap"]["training_patients_among_them"] == 0, member
md = open(f"{out}/pool/pool.md").read()
assert "finetuned_e2e: the mean of 4 runs' probabilities" in md, "the members were not averaged"
PY
grep -q "init" "$T/out/external.pre.train.log" || { echo "the pre member did not start from the 2019 model"; exit 1; }
grep -q "init.*pre-big.model" "$T/out/external.pre-big.train.log" || { echo "the pre-big member did not start from its 2019 model"; exit 1; }
# QUICK's two sizes: the small members 1 layer of 32, the big ones 2 layers of 48.
for f in external.big pre-big external.pre-big; do
  grep -q "^model: 2 layers, d_model 48" "$T/out/$f.train.log" || { echo "$f did not train the bigger architecture"; exit 1; }
done
grep -q "^model: 1 layers, d_model 32" "$T/out/pre.train.log" || { echo "the pre member's 2019 model is not the small architecture"; exit 1; }
grep -q "^model: 1 layers, d_model 32" "$T/out/external.train.log" || { echo "the scratch member did not train the small architecture"; exit 1; }
# The same command again continues the run instead of redoing it: every member's training and
# evaluation reused, the pool the same. A member whose bundle is gone is trained and evaluated
# anew, the others still reused.
cp "$T/out/pool/pool.json" "$T/pool1.json"
OUT=$T/out C=$CLINFM QUICK=1 THREADS=1 PRETRAIN=$T/p19 bash bench/p12_eval.sh "$T/tr" "$T/ev" > "$T/run2.log" 2>&1 \
  || { tail -20 "$T/run2.log"; echo "p12_eval.sh failed when run again"; exit 1; }
[ "$(grep -c "member is trained (reused)" "$T/run2.log")" = 4 ] && [ "$(grep -c "member is evaluated (reused)" "$T/run2.log")" = 4 ] \
  || { grep "^==" "$T/run2.log"; echo "the second run did not reuse the four members"; exit 1; }
cmp -s "$T/out/pool/pool.json" "$T/pool1.json" || { echo "the continued run's pool differs"; exit 1; }
rm -rf "$T/out/external.big.model"
OUT=$T/out C=$CLINFM QUICK=1 THREADS=1 PRETRAIN=$T/p19 bash bench/p12_eval.sh "$T/tr" "$T/ev" > "$T/run3.log" 2>&1 \
  || { tail -20 "$T/run3.log"; echo "p12_eval.sh failed after a member's bundle was removed"; exit 1; }
grep -q "train the big member" "$T/run3.log" && grep -q "evaluate the big member" "$T/run3.log" \
  && [ "$(grep -c "member is evaluated (reused)" "$T/run3.log")" = 3 ] \
  || { grep "^==" "$T/run3.log"; echo "a removed member was not redone alone"; exit 1; }
echo "p12 external: $N_EVAL evaluation stays, $DEATHS deaths, trained on $N_TRAIN others: ok"
