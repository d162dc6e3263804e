#!/usr/bin/env bash
# The fuzz script: every loader target of tests/mutations.rs with N random mutations each
# (default one million), one line of counts per target. Inputs a loader accepts become seeds
# for further mutations. A panic stops the run and keeps the input beside the target's copy.
#   dist/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
UNCLIP_FUZZ_EXECS="${1:-1000000}" cargo test --release --test mutations -- --nocapture --test-threads 1 2>&1 \
  | grep -E "mutations|test result|panicked"
