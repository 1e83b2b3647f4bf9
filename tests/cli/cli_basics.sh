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
exit $fail
