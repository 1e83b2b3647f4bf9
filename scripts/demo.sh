#!/usr/bin/env bash
# `make demo`: the pipeline on the bundled data, through the clinfm binary.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/clinfm demo --data data --mappings mappings --out out/demo
