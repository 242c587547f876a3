#!/usr/bin/env bash
# Side-by-side benchmark: `cicd-agents build` vs `docker buildx build` on the
# test environment's daemon (see benches/README.md).
#
#   scripts/bench.sh                     full run (20,000 files, 1 GiB, 100,000 log lines; 5 iterations)
#   scripts/bench.sh --quick             tiny contexts, one iteration
#   scripts/bench.sh --iterations 9 --cases files-first,logs --verbose
#
# Starts (or reuses) the test environment, builds release binaries into
# $CARGO_TARGET_DIR (default target/), runs the harness
# and prints the markdown table, which is also written to target/bench/report.md.
# Arguments are passed to the harness; `--help` lists them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

echo "==> test environment" >&2
eval "$(bash scripts/testenv.sh up)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
echo "==> release build (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
cargo build --release -p cicd-agents-cli -p cicd-agents-benches --bins

echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (numbers are noisy while other work runs)" >&2
exec "$CARGO_TARGET_DIR/release/side-by-side" --ours "$CARGO_TARGET_DIR/release/cicd-agents" "$@"
