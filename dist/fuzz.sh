#!/usr/bin/env bash
# The fuzz script: every loader target of tests/mutations.rs with N random mutations each
# (default one million), one line of counts per target. Inputs a loader accepts become seeds
# for further mutations. A panic stops the run and keeps the input beside the target's copy.
#   dist/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
# Build once, then run the test binary itself: later edits to the tree cannot restart a run.
bin=$(cargo test --release --test mutations --no-run --message-format=json 2>/dev/null \
  | grep '"executable":"[^"]*mutations' | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1)
[ -x "$bin" ] || { echo "error: could not build tests/mutations.rs" >&2; exit 1; }
started=$(date +%s)
UNCLIP_FUZZ_EXECS="${1:-1000000}" "$bin" --nocapture --test-threads 1 2>&1 | grep --line-buffered -E "mutations|test result|panicked"
echo "fuzz: $(( $(date +%s) - started )) s"
