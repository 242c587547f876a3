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
# Arguments are passed to the harness; `--help` lists them. Then runs the
# whole-pipeline comparison (scripts/bench-pipeline.sh: the original design's
# shell steps against `cicd-agents pipeline run`), unless --no-pipeline is given;
# --pipeline-only runs just that.
set -euo pipefail

pipeline=yes
harness=yes
args=()
for arg in "$@"; do
    case "$arg" in
        --no-pipeline) pipeline=no ;;
        --pipeline-only) harness=no ;;
        *) args+=("$arg") ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

echo "==> test environment" >&2
eval "$(bash scripts/testenv.sh up)"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
echo "==> release build (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
cargo build --release -p cicd-agents-cli -p cicd-agents-benches --bins

echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (numbers are noisy while other work runs)" >&2
if [ "$harness" = yes ]; then
    "$CARGO_TARGET_DIR/release/side-by-side" --ours "$CARGO_TARGET_DIR/release/cicd-agents" ${args[@]+"${args[@]}"}
fi
if [ "$pipeline" = yes ]; then
    iterations=3
    for ((i = 0; i < ${#args[@]}; i++)); do
        [ "${args[$i]}" = --iterations ] && iterations=${args[$((i + 1))]:-3}
    done
    bash scripts/bench-pipeline.sh --iterations "$iterations" --cli "$CARGO_TARGET_DIR/release/cicd-agents"
fi
