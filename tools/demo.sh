#!/usr/bin/env bash
# The main job on a catalog (default: the bundled sample prefecture): validate it, place every
# department's requests on the operators its contracts allow, stand up a real local OpenStack per
# operator, read live capacity, and build one department's tenant on its contracted operator.
set -euo pipefail
CATALOG=${1:-examples/prefecture}
Y=.venv/bin/yunshang
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Validate the catalog ($CATALOG)"
$Y catalog validate --catalog "$CATALOG"

step "2. Place every department's requests (contract-aware, cheapest first)"
$Y plan --catalog "$CATALOG" --output table
