#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each and reports crashes.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   fuzz each target SECONDS (default 60)
#   bash scripts/fuzz.sh --replay [TARGET...]    run the kept inputs in fuzz/regressions/TARGET
#                                                (and fuzz/seeds/TARGET) once each
#
# Targets: dockerignore address options values_edit session_packets (default: all).
# Not part of CI (scripts/test.sh): the targets need libFuzzer and -Zsanitizer, which on a stable
# toolchain works with RUSTC_BOOTSTRAP=1 (set here). Needs `cargo fuzz` (cargo install cargo-fuzz).
#
# Corpora grow in fuzz/corpus/TARGET (not committed); crashes land in fuzz/artifacts/TARGET.
# A crash is a bug: fix it in the library, add a unit test with the input, and copy the input to
# fuzz/regressions/TARGET/ so that --replay keeps checking it.
#
# Environment: FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_RSS_MB
# (memory limit per process, default 2048), FUZZ_TIMEOUT (seconds per input, default 10).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1 RUSTUP_AUTO_INSTALL=0 CARGO_TERM_COLOR=never
# Keep the sanitizer build apart from the workspace's normal target directory.
export CARGO_TARGET_DIR="$root/fuzz/target"

all_targets=(dockerignore address options values_edit session_packets)
replay=false
seconds=60
if [[ ${1:-} == --replay ]]; then
    replay=true
    shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    if [[ ! " ${all_targets[*]} " =~ " $target " ]]; then
        echo "error: unknown fuzz target $target (known: ${all_targets[*]})" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed; run: cargo install cargo-fuzz" >&2
    exit 2
fi

echo "==> building ${targets[*]}" >&2
for target in "${targets[@]}"; do
    if ! cargo fuzz build -O "$target" >&2; then
        echo "error: building fuzz target $target failed" >&2
        exit 2
    fi
done

failed=()
for target in "${targets[@]}"; do
    if $replay; then
        inputs=()
        for dir in "regressions/$target" "seeds/$target"; do
            [[ -d $dir ]] && while IFS= read -r -d '' file; do inputs+=("$file"); done < <(find "$dir" -type f -print0)
        done
        if [[ ${#inputs[@]} -eq 0 ]]; then
            echo "==> $target: no kept inputs" >&2
            continue
        fi
        echo "==> $target: replaying ${#inputs[@]} kept input(s)" >&2
        if cargo fuzz run -O "$target" "${inputs[@]}" -- -runs=1 >"target/replay-$target.log" 2>&1; then
            echo "$target: ok (${#inputs[@]} inputs)"
        else
            echo "$target: FAILED (see fuzz/target/replay-$target.log)"
            failed+=("$target")
        fi
        continue
    fi
    mkdir -p "corpus/$target" "artifacts/$target"
    corpora=("corpus/$target")
    [[ -d seeds/$target ]] && corpora+=("seeds/$target")
    [[ -d regressions/$target ]] && corpora+=("regressions/$target")
    before=$(find "artifacts/$target" -type f | wc -l)
    echo "==> $target: fuzzing for ${seconds}s" >&2
    log="target/fuzz-$target.log"
    marker="target/fuzz-$target.started"
    touch "$marker"
    parallel=()
    jobs=${FUZZ_JOBS:-1}
    # -jobs makes libFuzzer write fuzz-N.log files into the current directory.
    [[ $jobs -gt 1 ]] && parallel=(-jobs="$jobs" -workers="$jobs")
    cargo fuzz run -O "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
        "${parallel[@]}" -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    after=$(find "artifacts/$target" -type f | wc -l)
    if [[ $status -eq 0 && $after -eq $before ]]; then
        echo "$target: ok ($runs runs in ${seconds}s, corpus $(find "corpus/$target" -type f | wc -l) inputs)"
    else
        echo "$target: CRASH (exit $status); new inputs in fuzz/artifacts/$target:"
        find "artifacts/$target" -type f -newer "$marker" | sed 's/^/    /'
        echo "    log: fuzz/$log"
        grep -m1 -A3 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/    /'
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ok"
