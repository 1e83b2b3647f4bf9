#!/usr/bin/env bash
# Realism report for `clinfm synth` (issue 16): `clinfm synth --compare` sets a generated
# population beside each real-shaped store clinfm is developed on, read in place from
# $CLINFM_DATA: the Synthea R4 bundles (FHIR: the generated side is FHIR NDJSON), the MIMIC-IV demo
# (the generated side is written as MIMIC-IV tables and read with the same mapping) and the OMOP
# GiBleed set (OMOP CDM tables). Each report lists age and sex, events per patient, code shares,
# value distributions and hospital stays, then where the two differ, with numbers. Not a test: the
# sets differ by design (Synthea's lifetimes, MIMIC's ICU patients, GiBleed's cohort); read it as a
# description. Figures in docs/SYNTH.md come from this script (development figures: the modules
# were tuned while looking at them).
# Usage: bash bench/synth_realism.sh [BUILD_DIR] [PATIENTS]   (default build, 3000)
#        SYNTH_REALISM_JSON=DIR also writes each report as DIR/<set>.json
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${1:-build}
N=${2:-3000}
BIN=$BUILD/clinfm
SYN=$(bench_data synthea-fhir-r4)
MIMIC=$(bench_data mimic-iv-demo)
OMOP=$(bench_data omop-gibleed)
TMP=$(mktemp -d /tmp/clinfm-synth-realism.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export CLINFM_DATA=$(cd "$(dirname "$MIMIC")" && pwd) TMPDIR=$TMP
bench_machine
"$BIN" ingest --format fhir --input "$SYN" --out "$TMP/synthea.store" --quiet
"$BIN" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$TMP/mimic.store" --quiet
"$BIN" ingest --mapping mappings/omop-cdm.map --input "$OMOP" --out "$TMP/omop.store" --quiet
for set in synthea mimic omop; do
  echo
  echo "================================================================ $set"
  "$BIN" synth --compare "$TMP/$set.store" --patients "$N" --seed 1 --quiet
  if [ -n "${SYNTH_REALISM_JSON:-}" ]; then
    mkdir -p "$SYNTH_REALISM_JSON"
    "$BIN" synth --compare "$TMP/$set.store" --patients "$N" --seed 1 --quiet --json > "$SYNTH_REALISM_JSON/$set.json"
  fi
done
