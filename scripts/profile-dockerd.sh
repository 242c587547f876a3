#!/usr/bin/env bash
# Where the daemon spends a no-change rebuild: a CPU profile of the test
# environment's dockerd during a loop of no-change rebuilds, per tool
# (benches/README.md, "The daemon's profile").
#
#   scripts/profile-dockerd.sh [--context DIR] [--seconds N] [--tools ours,buildx]
#                              [--out DIR] [--cli PATH] [--syscalls]
#
# For each tool: two warm-up builds of DIR (`FROM scratch`, `COPY . /ctx`,
# `--output type=cacheonly`, default attestations off, as the side-by-side
# harness runs them), then dockerd's `/debug/pprof/profile?seconds=N` (it
# answers on the API socket without debug mode) while the tool rebuilds DIR in
# a loop. Prints the builds, the wall time per build, dockerd's CPU per build
# (from /proc, so other work on the shared daemon counts too) and, when `go`
# is found (PATH or /usr/lib/go-*/bin), dockerd's CPU per build by function.
# --syscalls also counts dockerd's system calls per build (`perf stat` on
# syscall tracepoints; needs perf). Profiles are kept in --out (default
# target/bench/dprof). The cicd-agents binary: --cli, default
# $CARGO_TARGET_DIR/release/cicd-agents.
#
# DIR defaults to the harness's 20,000-file context, kept by
# `side-by-side --cases files-nochange --keep-work` in target/bench/work/files-ctx.
# Never restarts or prunes the daemon; the test environment must be up.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

context="$root/target/bench/work/files-ctx"
seconds=20
tools=ours,buildx
out="$root/target/bench/dprof"
cli="$CARGO_TARGET_DIR/release/cicd-agents"
syscalls=no
while [ $# -gt 0 ]; do
    case "$1" in
        --context) context="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --tools) tools="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --cli) cli="$2"; shift 2 ;;
        --syscalls) syscalls=yes; shift ;;
        -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "profile-dockerd: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
case "$seconds" in '' | *[!0-9]* | 0) echo "profile-dockerd: --seconds needs a positive number" >&2; exit 2 ;; esac
[ -f "$context/Dockerfile" ] || {
    echo "profile-dockerd: no Dockerfile in '$context' (run side-by-side --cases files-nochange --keep-work, or pass --context)" >&2
    exit 2
}
[ -x "$cli" ] || { echo "profile-dockerd: no cicd-agents binary at '$cli' (cargo build --release -p cicd-agents-cli, or pass --cli)" >&2; exit 2; }

eval "$(bash scripts/testenv.sh env)"
sock=${CICD_TESTENV_DOCKER_SOCK:?the test environment is not up: scripts/testenv.sh up}
pidfile="$CICD_TESTENV_DIR/dockerd.pid"
[ -S "$sock" ] && [ -s "$pidfile" ] || { echo "profile-dockerd: the test environment's dockerd is not running" >&2; exit 1; }
dockerd_pid=$(cat "$pidfile")
kill -0 "$dockerd_pid" 2>/dev/null || { echo "profile-dockerd: dockerd (pid $dockerd_pid) is not running" >&2; exit 1; }

gobin=$(command -v go || ls -d /usr/lib/go-*/bin/go 2>/dev/null | tail -n 1 || true)
mkdir -p "$out"
export BUILDX_NO_DEFAULT_ATTESTATIONS=1 DOCKER_HOST="unix://$sock"

build_cmd() {
    case "$1" in
        ours) echo "$cli build --addr docker://unix://$sock --output type=cacheonly --progress plain --network host $context" ;;
        buildx) echo "docker buildx build --output type=cacheonly --progress plain --network host $context" ;;
        *) echo "profile-dockerd: unknown tool '$1' (ours, buildx)" >&2; exit 2 ;;
    esac
}
# user + system ticks of dockerd
dockerd_ticks() { awk '{print $14 + $15}' "/proc/$dockerd_pid/stat"; }

# CPU per build by function: cumulative time of a few named frames, divided by the builds.
by_function() {
    local profile=$1 builds=$2
    "$gobin" tool pprof -top -cum -nodecount=100000 -nodefraction=0 "$profile" 2>/dev/null | awk -v n="$builds" '
        function ms(v) { if (v == "0") return 0; if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0; return substr(v, 1, length(v) - 1) * 1000 }
        /Total samples =/ { t = $0; sub(/.*Total samples = /, "", t); sub(/ .*/, "", t); total = ms(t) }
        NF >= 6 && $2 ~ /%$/ && $5 ~ /%$/ { f = $6; for (i = 7; i <= NF; i++) f = f " " $i; cum[f] = ms($4) }
        END {
            fs = "github.com/moby/buildkit/vendor/github.com/tonistiigi/fsutil."
            printf "  %-52s %7.1f ms\n", "all samples", total / n
            nk = split("fsutil receive (all its goroutines)|golang.org/x/sync/errgroup.(*Group).Go.func1|" \
                  "  walk of the daemon'\''s own copy|" fs "doubleWalkDiff.func1|" \
                  "    lstat|os.Lstat|" \
                  "    llistxattr|" fs "loadXattr|" \
                  "    readdir|os.ReadDir|" \
                  "  packet receive loop|" fs "(*receiver).run.func2|" \
                  "  second walk (directory mtimes)|" fs "(*DiskWriter).Wait|" \
                  "  compare|" fs "doubleWalkDiff.func3|" \
                  "GC mark workers|runtime.gcBgMarkWorker|" \
                  "gRPC transport reader (session)|google.golang.org/grpc/internal/transport.(*http2Client).reader|" \
                  "contenthash save (whole tree)|github.com/moby/buildkit/cache/contenthash.(*cacheContext).save|" \
                  "bbolt commits|go.etcd.io/bbolt.(*Tx).Commit|" \
                  "build history record|github.com/moby/buildkit/solver/llbsolver.(*Solver).recordBuildHistory.func1", k, "|")
            for (i = 1; i < nk; i += 2) printf "  %-52s %7.1f ms\n", k[i], cum[k[i + 1]] / n
        }'
}

syscall_counts() {
    local tool=$1 builds=$2 events="" s cmd
    cmd=$(build_cmd "$tool")
    for s in newfstatat llistxattr getdents64 fdatasync mount umount openat read write; do
        events="$events,syscalls:sys_enter_$s"
    done
    perf stat -x, -e "${events#,}" -p "$dockerd_pid" -- bash -c "for i in \$(seq $builds); do $cmd >/dev/null 2>&1; done" 2>&1 |
        awk -F, -v n="$builds" '$3 ~ /^syscalls:/ { sub(/syscalls:sys_enter_/, "", $3); printf "  %-20s %9.1f per build\n", $3, $1 / n }'
}

echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; dockerd pid $dockerd_pid" >&2
for tool in ${tools//,/ }; do
    cmd=$(build_cmd "$tool")
    for _ in 1 2; do $cmd >/dev/null 2>&1 || { echo "profile-dockerd: warm-up build with $tool failed: $cmd" >&2; exit 1; }; done
    profile="$out/$tool.pb.gz"
    ticks0=$(dockerd_ticks)
    curl -sf --unix-socket "$sock" "http://docker/debug/pprof/profile?seconds=$seconds" -o "$profile" &
    curl_pid=$!
    start=$(date +%s%N)
    builds=0
    while kill -0 "$curl_pid" 2>/dev/null; do
        $cmd >/dev/null 2>&1 || { echo "profile-dockerd: build with $tool failed: $cmd" >&2; exit 1; }
        builds=$((builds + 1))
    done
    end=$(date +%s%N)
    wait "$curl_pid" || { echo "profile-dockerd: dockerd did not answer /debug/pprof/profile" >&2; exit 1; }
    ticks1=$(dockerd_ticks)
    hz=$(getconf CLK_TCK)
    echo "$tool: $builds builds, $(( (end - start) / 1000000 / builds )) ms wall per build, dockerd CPU $(( (ticks1 - ticks0) * 1000 / hz / builds )) ms per build (load $(cut -d' ' -f1 /proc/loadavg)); profile $profile"
    if [ -n "$gobin" ]; then
        by_function "$profile" "$builds"
    else
        echo "  (no go toolchain found: read $profile with go tool pprof)"
    fi
    if [ "$syscalls" = yes ]; then
        syscall_counts "$tool" 5
    fi
done
