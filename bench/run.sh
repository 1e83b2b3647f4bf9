#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its ratio against a reference measured in the
# same run. Benchmarks are not tests: run them on a quiet machine and quote their output.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ingestion: clinfm vs pandas (MIMIC-IV demo)"
/usr/bin/python3 bench/ingest_bench.py build/clinfm 5
for b in bench/*_bench.sh; do
  [ -f "$b" ] || continue
  echo "== $(basename "$b" .sh)"
  bash "$b"
done
echo "== serve_attack"
bash bench/serve_attack.sh
