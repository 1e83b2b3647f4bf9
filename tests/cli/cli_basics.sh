#!/usr/bin/env bash
# The command line: help for every command, unknown options and bad input exit 1 with a message.
# Needs no data directory: every input here is refused before anything is read.
set -uo pipefail
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
fail=0
expect() { # want_rc description command...
  local want=$1 what=$2; shift 2
  "$@" > "$T/out.txt" 2> "$T/err.txt"; local rc=$?
  if [ "$rc" -ne "$want" ]; then echo "$what: exit $rc, want $want"; cat "$T/err.txt"; fail=1; fi
}
expect 0 "top-level help" "$CLINFM" --help
grep -q "ingest" "$T/out.txt" || { echo "top-level help does not list ingest"; fail=1; }
for c in $("$CLINFM" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}'); do
  expect 0 "$c --help" "$CLINFM" "$c" --help
  grep -q "usage: clinfm $c" "$T/out.txt" || { echo "$c --help has no usage line"; fail=1; }
  expect 1 "$c with an unknown option" "$CLINFM" "$c" --no-such-option
  grep -q "no-such-option\|unknown" "$T/err.txt" || { echo "$c: unknown option not named"; fail=1; }
done
expect 1 "eval with an unknown head pooling" "$CLINFM" eval --ft-pool max
grep -q "last, mean, both, extremes, windows, attention or variables" "$T/err.txt" || { echo "eval --ft-pool: the choices not named: $(cat "$T/err.txt")"; fail=1; }
expect 1 "eval --ft-probe-cv 1" "$CLINFM" eval --ft-probe-cv 1
grep -q "ft-probe-cv expects 0 (off) or 2 .. 64 folds" "$T/err.txt" || { echo "eval --ft-probe-cv 1: not explained: $(cat "$T/err.txt")"; fail=1; }
expect 1 "eval --ft-average-from -1" "$CLINFM" eval --ft-average-from -1
expect 1 "no command" "$CLINFM"
expect 1 "unknown command" "$CLINFM" frobnicate
mkdir -p "$T/in"
expect 1 "ingest without --out" "$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$T/in"
expect 1 "ingest with a missing mapping" "$CLINFM" ingest --mapping "$T/none.map" --input data --out "$T/x.store"
grep -q "none.map" "$T/err.txt" || { echo "missing mapping file not named"; fail=1; }
expect 1 "ingest from a missing folder" "$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$T/nope" --out "$T/x.store"
expect 1 "inspect a missing store" "$CLINFM" inspect "$T/none.store"
printf 'not a store at all, just text that is long enough to be read as a header...%.0s' {1..100} > "$T/junk.store"
expect 1 "inspect a non-store" "$CLINFM" inspect "$T/junk.store"
grep -q "not a clinfm" "$T/err.txt" || { echo "non-store not explained: $(cat "$T/err.txt")"; fail=1; }
expect 1 "export without --format" "$CLINFM" export "$T/junk.store" --out "$T/e"
[ -e "$T/x.store" ] && { echo "a failed ingest left a store"; fail=1; }
# The option parser (src/cli/opts.h): each mistake is refused with exit 1 and a message naming it.
refused() { # pattern description command...: exit 1 and the message matches pattern
  local pat=$1 what=$2; shift 2
  expect 1 "$what" "$@"
  grep -q -- "$pat" "$T/err.txt" || { echo "$what: message does not say '$pat': $(cat "$T/err.txt")"; fail=1; }
}
refused "needs a value" "a value missing at the end" "$CLINFM" deid "$T/junk.store" --key
refused "must be 2 to 1000000" "a number out of range" "$CLINFM" deid "$T/junk.store" --k 1
refused "non-negative integer" "a number that is not one" "$CLINFM" synth --patients many --out "$T/s"
refused "must be shift or safe-harbor" "a choice not offered" "$CLINFM" deid "$T/junk.store" --dates=never
refused "takes no value" "a value given to a flag" "$CLINFM" inspect "$T/junk.store" --json=yes
refused "expected exactly one STORE" "two positional arguments" "$CLINFM" inspect a b
refused "expects a number" "a ratio that is not a number" "$CLINFM" deid-eval --corpus x --min-recall high
refused "must be -36500 to 36500" "a signed number out of range" "$CLINFM" deid-text --shift-days 40000
refused "must be 0 to 1000" "eval --ft-summary-weight negative" "$CLINFM" eval --task x --store y --out z --model m --ft-summary-weight -1
refused "must be 1 to 64" "eval --ft-summary-vars above the cap" "$CLINFM" eval --task x --store y --out z --model m --ft-summary-vars 65
refused "at most 8 times" "a repeatable option given too often" "$CLINFM" pool d $(for i in 1 2 3 4 5 6 7 8 9; do echo --reference r$i; done)
# auxiliary tasks of end-to-end fine-tuning: refused before anything is read
refused "ft-aux-weight needs --ft-aux-task" "eval --ft-aux-weight alone" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --model-predictors finetuned_e2e --ft-aux-weight 1
refused "name finetuned_e2e in --model-predictors" "eval --ft-aux-task without finetuned_e2e" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --ft-aux-task y
refused "at most 8 times" "eval --ft-aux-task nine times" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --model-predictors finetuned_e2e $(for i in 1 2 3 4 5 6 7 8 9; do echo --ft-aux-task t$i; done)
refused "need --ft-distill" "eval --ft-distill-weight alone" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --model-predictors finetuned_e2e --ft-distill-weight 1
refused "name finetuned_e2e in --model-predictors" "eval --ft-distill without finetuned_e2e" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --ft-distill xgboost_values
refused "takes one of logreg" "eval --ft-distill with the probe" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model m --model-predictors finetuned_e2e --ft-distill record_position
refused "need --model" "eval --ft-aux-task without --model" "$CLINFM" eval --task x --store "$T/junk.store" --out "$T/e" --model-predictors finetuned_e2e --ft-aux-task y
# train reads its options through the same parser (every refusal before the store is opened).
refused "--out MODEL is required" "train without --out" "$CLINFM" train --store "$T/junk.store"
refused "must be 1 to 64" "train --layers out of range" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --layers 0
refused "--lr must be 0 or more" "train --lr negative" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --lr -1
refused "--dropout must be below 1" "train --dropout 1" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --dropout 1
refused "must be tokens or embed" "train --values not offered" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --values raw
refused "--steps must be 1 or more" "train --steps 0" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --steps 0
refused "write --dist in full" "train --dist abbreviated" "$CLINFM" train --store "$T/junk.store" --out "$T/m" --dis mpi
[ -e "$T/m" ] && { echo "a refused train left a model"; fail=1; }
# --name=value and unique prefixes are read as getopt_long reads them: these fail later, on the store
refused "junk.store" "--out=DIR and a prefix (--form)" "$CLINFM" export --form meds-csv --out="$T/e2" "$T/junk.store"
exit $fail
