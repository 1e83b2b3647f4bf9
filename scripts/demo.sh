#!/usr/bin/env bash
# `make demo`: the whole path through the clinfm binary (see `build/clinfm demo --help`), from no
# data to a clinician's card. Without DATA, on patients `clinfm synth` makes (no data directory
# needed), into out/demo. `make demo DATA=real`: on the MIMIC-IV demo and Synthea, read in place
# from $CLINFM_DATA (default ../shared/data; never from the repository), into out/demo-real.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${DATA:-}" in
  "" | synth) exec build/clinfm demo --out out/demo ;;
  real) exec build/clinfm demo --data "${CLINFM_DATA:-../shared/data}" --out out/demo-real ;;
  *) echo "make demo: DATA=$DATA: expected DATA=real, or no DATA for generated patients" >&2; exit 1 ;;
esac
