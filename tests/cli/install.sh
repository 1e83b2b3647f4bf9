#!/usr/bin/env bash
# An installed clinfm finds its shipped files (de-identification rules, task and mapping files)
# without flags and from any working directory: `make install-share` lays out PREFIX/share/clinfm
# as `make install` does, the built binary is placed in PREFIX/bin, and it runs from elsewhere.
set -euo pipefail
ROOT=$(pwd)
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
P="$T/prefix"
make -s -C "$ROOT" install-share PREFIX="$P" >/dev/null
install -D -m 0755 "$CLINFM" "$P/bin/clinfm"
[ -f "$P/share/clinfm/data/deid/patterns.tsv" ] || { echo "rules not installed"; exit 1; }
ls "$P/share/clinfm/tasks/"*.task >/dev/null && ls "$P/share/clinfm/mappings/"*.map >/dev/null
# Code lists that mappings name as ${mapping}/... travel with them.
[ -f "$P/share/clinfm/mappings/physionet-2012-parameters.csv" ] || { echo "mapping dictionaries not installed"; exit 1; }
cp "$ROOT/tests/data/clinical-notes-phrase.txt" "$T/notes.txt"
mkdir -p "$T/elsewhere"
cd "$T/elsewhere"
# The rules come from PREFIX/share/clinfm, not from a checkout (none is here).
env -u CLINFM_SHARE -u CLINFM_DEID_RULES "$P/bin/clinfm" deid-eval --corpus "$T/notes.txt" --format phrase --json \
  > "$T/eval.json" || { echo "installed deid-eval could not run"; exit 1; }
grep -q '"recall"' "$T/eval.json" || { echo "no recall in output"; exit 1; }
# A bare task name resolves to the shipped task file: the error is about the store, not the task.
set +e
msg=$(env -u CLINFM_SHARE "$P/bin/clinfm" label --task readmission_30d --store "$T/none.store" --out "$T/l.csv" 2>&1)
set -e
case "$msg" in *none.store*) ;; *) echo "bare task name not resolved: $msg"; exit 1;; esac
# A wrong name is reported as given.
set +e
msg=$(env -u CLINFM_SHARE "$P/bin/clinfm" label --task no_such_task --store "$T/none.store" --out "$T/l.csv" 2>&1)
set -e
case "$msg" in *no_such_task*) ;; *) echo "missing task not named: $msg"; exit 1;; esac
echo "installed binary finds its files: ok"
