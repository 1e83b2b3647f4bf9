#!/usr/bin/env bash
# `make demo`: the pipeline on the bundled data, through the clinfm binary.
set -euo pipefail
cd "$(dirname "$0")/.."
# Public datasets are read where they are kept, never from the repository: $CLINFM_DATA,
# default ../shared/data beside the checkout.
exec build/clinfm demo --data "${CLINFM_DATA:-../shared/data}" --mappings mappings --out out/demo
