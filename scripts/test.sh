#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine of this kind: sets up the real
# test environment (Docker daemon with embedded BuildKit, registry, git
# server), builds everything and runs the Rust and Python tests against it.
# Ends with one summary line: "tests: N passed, N failed".
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log_dir=${CICD_TEST_LOG_DIR:-$root/target/test-logs}
mkdir -p "$log_dir"
started=$(date +%s)

say() { printf '\n==> %s\n' "$*" >&2; }

say "setting up the test environment"
if ! env_lines=$(bash scripts/testenv.sh up); then
    echo "error: scripts/testenv.sh up failed" >&2
    echo "tests: 0 passed, 1 failed"
    exit 1
fi
eval "$env_lines"

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

say "building the workspace"
if ! cargo build --workspace --all-targets 2>&1 | tail -n 40; then
    echo "error: the build failed" >&2
    echo "tests: 0 passed, 1 failed"
    exit 1
fi

# Static checks, each counted as one test: format, clippy (warnings are
# errors; the library crates deny undocumented public items through the
# workspace [lints]), and the fuzz workspace's format.
checks_passed=0
checks_failed=0
check() {
    local name="$1"
    shift
    say "check: $name"
    if "$@" >"$log_dir/check-$name.log" 2>&1; then
        checks_passed=$((checks_passed + 1))
    else
        tail -n 60 "$log_dir/check-$name.log" >&2
        echo "check failed: $name (full log: $log_dir/check-$name.log)" >&2
        checks_failed=$((checks_failed + 1))
    fi
}
check rustfmt cargo fmt --all --check
check rustfmt-fuzz bash -c 'cd fuzz && cargo fmt --check'
check clippy cargo clippy --workspace --all-targets -- -D warnings

say "running the Rust tests"
cargo test --workspace --no-fail-fast 2>&1 | tee "$log_dir/cargo-test.log"
rust_status=${PIPESTATUS[0]}

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log_dir/cargo-test.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log_dir/cargo-test.log" | awk '{s+=$1} END {print s+0}')
if [ "$rust_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi
passed=$((passed + checks_passed))
failed=$((failed + checks_failed))

if [ -x scripts/test-python.sh ]; then
    say "running the Python tests"
    bash scripts/test-python.sh 2>&1 | tee "$log_dir/pytest.log"
    py_status=${PIPESTATUS[0]}
    py_passed=$(grep -Eo '[0-9]+ passed' "$log_dir/pytest.log" | tail -n 1 | awk '{print $1+0}')
    py_failed=$(grep -Eo '[0-9]+ (failed|error)' "$log_dir/pytest.log" | tail -n 1 | awk '{print $1+0}')
    passed=$((passed + ${py_passed:-0}))
    failed=$((failed + ${py_failed:-0}))
    if [ "$py_status" -ne 0 ] && [ "${py_failed:-0}" -eq 0 ]; then
        failed=$((failed + 1))
    fi
fi

elapsed=$(( $(date +%s) - started ))
echo
echo "suite finished in ${elapsed}s (logs in $log_dir)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
