#!/usr/bin/env bash
# Preparation once (src/timeline/prepare.h) and the held-out budget, on generated patients
# (`clinfm synth`, no data directory needed):
# - a second train on a prepared shard folder reuses it (says so, rewrites no shard) and ends
#   with a checkpoint byte-identical to the run that prepared it; `clinfm vocab --shards` makes
#   a preparation train reuses as well;
# - a preparation made from another store, split or vocabulary options, or whose shard was
#   altered, is named and rebuilt, and the rebuilt shard is the original byte for byte; the
#   bundle's split record, kept beside the preparation, is copied only when it names this store;
# - the held-out evaluation at the end of training covers --held-out-batches batches (default
#   --eval-batches), and a finished model resumed with --held-out-batches 0 evaluates every
#   window, keeps its checkpoint and the rest of its summary, and matches a run that evaluated
#   everything from the start; a reused preparation trains on a store whose event blocks are
#   corrupt (so it never decoded them). About 3 s.
set -uo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
"$CLINFM" synth --patients 120 --seed 4 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/a.store" --quiet || exit 1
"$CLINFM" synth --patients 100 --seed 5 --truth-paths 0 --quiet --out "$T/syn2" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn2/fhir" --out "$T/b.store" --quiet || exit 1
A=(--allow-identified --steps 4 --eval-every 2 --layers 1 --d-model 16 --heads 2 --context 32 --batch 2
   --eval-batches 2 --threads 1 --dropout 0.1 --seed 3)
P=$T/prep

"$CLINFM" train --store "$T/a.store" "${A[@]}" --out "$T/m1" --shards "$P" > "$T/1.log" || { cat "$T/1.log"; exit 1; }
[ -f "$P/prepared.json" ] || { echo "no preparation record"; fail=1; }
grep -q "reusing" "$T/1.log" && { echo "first run claims to reuse"; fail=1; }
cp "$P/held_out.tokens" "$T/held_out.orig"
before=$(stat -c %Y.%i "$P"/*.tokens)
sleep 1.1 # so that a rewritten shard would get another mtime
"$CLINFM" train --store "$T/a.store" "${A[@]}" --out "$T/m2" --shards "$P" > "$T/2.log" || { cat "$T/2.log"; exit 1; }
grep -q "data: reusing the preparation in $P" "$T/2.log" || { echo "second run did not reuse: $(head -3 "$T/2.log")"; fail=1; }
[ "$(stat -c %Y.%i "$P"/*.tokens)" = "$before" ] || { echo "a reused preparation was rewritten"; fail=1; }
cmp -s "$T/m1/checkpoint.bin" "$T/m2/checkpoint.bin" || { echo "checkpoint differs with a reused preparation"; fail=1; }
for f in vocab.bin split.json split_subjects.bin; do # the split record is copied from the preparation
  cmp -s "$T/m1/$f" "$T/m2/$f" || { echo "$f differs with a reused preparation"; fail=1; }
done
# The baselines come from the record, and are the ones computed when it was made.
[ "$(grep '^data:' "$T/1.log")" = "$(grep '^data: train' "$T/2.log")" ] || { echo "baselines differ when reused"; fail=1; }

# A reused preparation reads none of the store's events (only its header, dictionaries and
# counts): a copy with one byte of its first event block altered (the header, and so the
# fingerprint, unchanged) fails any full open, yet trains on the preparation to the same bytes.
cp "$T/a.store" "$T/c.store"
printf '\xff' | dd of="$T/c.store" bs=1 seek=$((4096 + 40)) conv=notrunc status=none # EVENT_DATA starts at 4096
"$CLINFM" train --store "$T/c.store" "${A[@]}" --out "$T/mc0" --shards "$T/cp" > "$T/c0.log" 2>&1 &&
  { echo "the altered event block went unnoticed by a full open: the check below proves nothing"; fail=1; }
"$CLINFM" train --store "$T/c.store" "${A[@]}" --out "$T/mc" --shards "$P" > "$T/c.log" 2>&1 ||
  { echo "a reused preparation read the store's events: $(tail -2 "$T/c.log")"; fail=1; }
cmp -s "$T/m1/checkpoint.bin" "$T/mc/checkpoint.bin" || { echo "checkpoint differs on the summary-opened store"; fail=1; }

# `clinfm vocab --shards` prepares what train reuses.
"$CLINFM" vocab --store "$T/a.store" --out "$T/v.bin" --shards "$T/vp" > /dev/null || exit 1
"$CLINFM" train --store "$T/a.store" "${A[@]}" --out "$T/m3" --shards "$T/vp" > "$T/3.log" || { cat "$T/3.log"; exit 1; }
grep -q "data: reusing" "$T/3.log" || { echo "train did not reuse clinfm vocab's preparation"; fail=1; }
cmp -s "$T/m1/checkpoint.bin" "$T/m3/checkpoint.bin" || { echo "checkpoint differs on clinfm vocab's preparation"; fail=1; }

# Stale preparations: named, then rebuilt.
stale() { # NAME EXPECTED-WORDS ARGS...
  local name=$1 words=$2; shift 2
  "$CLINFM" train "${A[@]}" --shards "$P" --out "$T/$name" "$@" > "$T/$name.log" 2>&1 || { echo "$name: failed"; cat "$T/$name.log"; fail=1; return; }
  grep -q "note: .*$words.*; preparing the data again" "$T/$name.log" || { echo "$name: not named as stale: $(head -2 "$T/$name.log")"; fail=1; }
  grep -q "data: reusing" "$T/$name.log" && { echo "$name: reused a stale preparation"; fail=1; }
}
stale store "another store" --store "$T/b.store"
stale back "another store" --store "$T/a.store"
cmp -s "$P/held_out.tokens" "$T/held_out.orig" || { echo "the rebuilt shard differs from the first"; fail=1; }
stale values "other vocabulary options" --store "$T/a.store" --values embed
stale vocab "another vocabulary than" --store "$T/a.store" --vocab "$T/m2/vocab.bin"
stale split "another split" --store "$T/a.store" --split 70/15/15
"$CLINFM" train --store "$T/a.store" "${A[@]}" --shards "$P" --out "$T/m4" > /dev/null || exit 1 # back to the first
printf 'X' | dd of="$P/tuning.tokens" bs=1 seek=100 conv=notrunc status=none # a byte of its header
stale altered "tuning.tokens has changed since it was prepared" --store "$T/a.store"
rm "$P/train.tokens"
stale missing "train.tokens is missing" --store "$T/a.store"
cmp -s "$T/m1/checkpoint.bin" "$T/missing/checkpoint.bin" || { echo "checkpoint differs after a rebuild"; fail=1; }
# A split record kept from another store is not copied into a bundle.
cp "$T/store/split.json" "$T/split.b"
"$CLINFM" train --store "$T/a.store" "${A[@]}" --shards "$P" --out "$T/m6" > /dev/null || exit 1
cp "$T/split.b" "$P/split.json"
"$CLINFM" train --store "$T/a.store" "${A[@]}" --shards "$P" --out "$T/m7" > /dev/null || exit 1
cmp -s "$T/m1/split.json" "$T/m7/split.json" || { echo "a stale split record was copied into the bundle"; fail=1; }

# The held-out budget: 2 batches of 2 windows by default here, every window on request.
grep -q "^held_out: .*; 4 of [0-9]* windows" "$T/1.log" || { echo "held-out budget not applied: $(grep held_out: "$T/1.log")"; fail=1; }
cp "$T/m1/checkpoint.bin" "$T/ck.before"
"$CLINFM" train --store "$T/a.store" --allow-identified --out "$T/m1" --shards "$P" --resume --held-out-batches 0 \
  > "$T/full.log" || { cat "$T/full.log"; exit 1; }
"$CLINFM" train --store "$T/a.store" "${A[@]}" --out "$T/m5" --shards "$P" --held-out-batches 0 > "$T/5.log" || exit 1
cmp -s "$T/ck.before" "$T/m1/checkpoint.bin" || { echo "re-evaluating held_out changed the checkpoint"; fail=1; }
/usr/bin/python3 - "$T/m1/train.json" "$T/m5/train.json" "$T/m2/train.json" << 'PY' || fail=1
import json, sys
full, fresh, budget = (json.load(open(p)) for p in sys.argv[1:])
lf, lr, lb = full["loss_nats_per_token"], fresh["loss_nats_per_token"], budget["loss_nats_per_token"]
ok = lf["held_out_windows"] == lf["held_out_windows_total"] > lb["held_out_windows"] == 4
ok = ok and lf["held_out_targets"] > lb["held_out_targets"] > 0
# the full figure equals a run that evaluated everything at the end; the rest of the summary stays
ok = ok and lf["held_out"] == lr["held_out"] and lf["held_out_targets"] == lr["held_out_targets"]
ok = ok and lf["train_last"] == lb["train_last"] and full["tokens_per_second"] > 0 and full["step"] == 4
print(f"held_out: budget {lb['held_out']:.4f} over {lb['held_out_windows']} windows, "
      f"full {lf['held_out']:.4f} over {lf['held_out_windows']}")
sys.exit(0 if ok else 1)
PY
[ $fail -eq 0 ] && echo "train_prepare passed"
exit $fail
