#!/usr/bin/env bash
# Chart write-back under contention: N writers (default 32) update one values file in one
# chart repository at the same moment, against the running test environment's git server,
# with a CPU-bound background load. Prints a markdown table: attempts per writer, the time
# until the last one landed, and the cost of one retry against a fresh clone (figures are
# recorded in benches/README.md).
#
#   scripts/bench-writeback.sh                      32 writers, 2 load threads
#   BENCH_WRITERS=64 BENCH_LOAD_THREADS=4 scripts/bench-writeback.sh
#
# Needs the test environment to be up already (scripts/testenv.sh up); this script only reads
# its variables and never starts, stops or restarts it. The measured work is git processes and
# the git server, so the test binary is a debug build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

eval "$(bash scripts/testenv.sh env)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
echo "==> load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
exec cargo test -p cicd-agents-gitops --test git_contention -- \
    --ignored --exact contention_benchmark --nocapture --test-threads=1
