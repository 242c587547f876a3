#!/usr/bin/env bash
# The whole pipeline, side by side: the original design's two Argo steps as a
# shell script (`docker buildx build` of the git URL with --push and a registry
# cache; `git clone --depth 1` of the chart; `sed -i` on the tag; `git commit`;
# `git push`) against `cicd-agents pipeline run` with the same definition, on
# the test environment's daemon, registry and git server.
#
#   scripts/bench-pipeline.sh [--iterations N] [--cli PATH]
#
# Three cases, each measured N times (default 3) per tool, tools alternating:
#   first     a source commit the daemon has never seen, a new tag, a new cache ref
#   rerun     the same commit and tag again (nothing to build, nothing to commit)
#   changed   one source file changed, a new tag
# Each tool has its own app and chart repositories (created here on the test git
# server), so neither profits from the other's cache. Prints a markdown table of
# medians: wall time and client CPU (user+system of the client processes: the
# daemon, registry and git server are not counted for either tool).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

iterations=3
cli=""
while [ $# -gt 0 ]; do
    case "$1" in
        --iterations) iterations="$2"; shift 2 ;;
        --cli) cli="$2"; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "bench-pipeline: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
case "$iterations" in '' | *[!0-9]* | 0) echo "bench-pipeline: --iterations needs a positive number" >&2; exit 2 ;; esac

say() { printf '==> %s\n' "$*" >&2; }

eval "$(bash scripts/testenv.sh up)"
if [ -z "$cli" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
    cargo build --release -q -p cicd-agents-cli
    cli="$CARGO_TARGET_DIR/release/cicd-agents"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stamp=$(date -u +%Y%m%d%H%M%S)-$$
git_host=${CICD_TESTENV_GIT_URL#http://}
export GIT_TERMINAL_PROMPT=0
# BuildKit 0.13 looks the git token up as the secret GIT_AUTH_TOKEN.<host:port>.
# git over HTTP with the token as a header, never in a URL or on a command line.
git_auth_config() {
    local header
    header=$(printf 'x-access-token:%s' "$CICD_TESTENV_GIT_TOKEN" | base64 -w0)
    printf '[http]\n\textraHeader = Authorization: Basic %s\n' "$header"
}
git_auth_config >"$work/gitconfig"
export GIT_CONFIG_GLOBAL="$work/gitconfig"
git config --global user.name "bench"
git config --global user.email "bench@cicd-agents.invalid"

# new_pair TOOL: app and chart repositories for one tool, seeded from the demo ones.
new_pair() {
    local tool="$1" name
    for name in app chart; do
        bash scripts/testenv.sh new-repo "bench-$name-$tool-$stamp" >/dev/null
        rm -rf "$work/seed"
        git clone -q "$CICD_TESTENV_GIT_URL/demo-$name.git" "$work/seed"
        git -C "$work/seed" push -q "$CICD_TESTENV_GIT_URL/bench-$name-$tool-$stamp.git" HEAD:refs/heads/main
    done
    git clone -q "$CICD_TESTENV_GIT_URL/bench-app-$tool-$stamp.git" "$work/app-$tool"
}

# change_source TOOL WHAT: one commit to the tool's app repository changing one file.
change_source() {
    local tool="$1" what="$2"
    echo "$what $(date +%s%N)" >"$work/app-$tool/bench-marker.txt"
    git -C "$work/app-$tool" add bench-marker.txt
    git -C "$work/app-$tool" commit -q -m "bench: $what"
    git -C "$work/app-$tool" push -q origin HEAD:refs/heads/main
}

# The original design as a shell script: build step, then chart step.
run_shell() {
    set -e
    local tag="$1" cache="$2" image="$CICD_TESTENV_REGISTRY/bench/shell-$stamp"
    local chart="$work/chart-shell-checkout"
    GIT_AUTH_TOKEN="$CICD_TESTENV_GIT_TOKEN" DOCKER_HOST="unix://$CICD_TESTENV_DOCKER_SOCK" \
        docker buildx build --builder default --progress quiet \
        --secret "id=GIT_AUTH_TOKEN.$git_host,env=GIT_AUTH_TOKEN" \
        --network host --build-arg "BASE_IMAGE=$CICD_TESTENV_BASE_IMAGE" \
        --cache-from "type=registry,ref=$image:$cache" \
        --cache-to "type=registry,ref=$image:$cache,mode=max" \
        --metadata-file "$work/shell-metadata.json" \
        -t "$image:$tag" --push \
        "$CICD_TESTENV_GIT_URL/bench-app-shell-$stamp.git#refs/heads/main" >/dev/null
    rm -rf "$chart"
    git clone -q --depth 1 --branch main "$CICD_TESTENV_GIT_URL/bench-chart-shell-$stamp.git" "$chart"
    sed -i "s|^\(  repository:\).*|\1 $image|; s|^\(  tag:\).*|\1 \"$tag\"|" "$chart/charts/demo/values.yaml"
    if ! git -C "$chart" diff --quiet; then
        git -C "$chart" commit -q -am "deploy $image:$tag"
        git -C "$chart" push -q origin HEAD:main
    fi
}

# measure TOOL CASE ARGS...: one timed run; appends "tool case wall cpu" to the results.
measure() {
    local tool="$1" case="$2"
    shift 2
    local started ended
    started=$(date +%s%N)
    /usr/bin/time -f '%U %S' -o "$work/time" bash -ec "run_$tool \"\$@\"" _ "$@" 2>"$work/err" || {
        cat "$work/err" >&2
        echo "bench-pipeline: $tool failed in case $case" >&2
        exit 1
    }
    ended=$(date +%s%N)
    # Wall time from the clock, to the millisecond (time(1) rounds to 10 ms).
    wall=$(echo "scale=3; ($ended - $started) / 1000000000" | bc)
    read -r user sys <"$work/time"
    echo "$tool $case $wall $(echo "$user + $sys" | bc)" >>"$work/results"
    say "$tool $case: ${wall}s wall"
}

# The pipeline definition, pointed at this run's repositories and image.
sed -e 's|\${git-server}/demo-app.git|${git-server}/${app-repo}.git|' \
    -e 's|\${git-server}/demo-chart.git|${git-server}/${chart-repo}.git|' \
    -e 's|\${registry}/demo/app:buildcache|${registry}/${image}:${cache-tag}|' \
    -e 's|\${registry}/demo/app:\${image-tag}|${registry}/${image}:${image-tag}|' \
    examples/pipeline.yaml >"$work/pipeline.yaml"
cat >>"$work/pipeline.yaml.params" <<'EOF'
  app-repo: demo-app
  chart-repo: demo-chart
  image: demo/app
  cache-tag: buildcache
EOF
sed -i "/^parameters:/r $work/pipeline.yaml.params" "$work/pipeline.yaml"
run_ours() {
    local tag="$1" cache="$2"
    "$cli" pipeline run "$work/pipeline.yaml" \
        --addr "$CICD_TESTENV_DOCKER_ADDR" --progress quiet \
        --set image-tag="$tag" \
        --set registry="$CICD_TESTENV_REGISTRY" \
        --set git-server="$CICD_TESTENV_GIT_URL" \
        --set app-repo="bench-app-ours-$stamp" \
        --set chart-repo="bench-chart-ours-$stamp" \
        --set image="bench/ours-$stamp" \
        --set cache-tag="$cache" >/dev/null
}

export -f run_shell run_ours
export cli work stamp git_host

say "repositories on the test git server (suffix $stamp)"
new_pair ours
new_pair shell
: >"$work/results"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for i in $(seq 1 "$iterations"); do
    for tool in ours shell; do
        change_source "$tool" "first-$i"
        measure "$tool" first "first-$i" "cache-$i"
        measure "$tool" rerun "first-$i" "cache-$i"
        change_source "$tool" "changed-$i"
        measure "$tool" changed "changed-$i" "cache-$i"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/results" "$iterations" "$load_after" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
data = {}
for tool, case, wall, cpu in rows:
    data.setdefault((tool, case), []).append((float(wall), float(cpu)))
print(f"\nPipeline, median of {sys.argv[2]} (load average after: {sys.argv[3]})\n")
print("| case | ours wall | shell wall | ours / shell | ours client CPU | shell client CPU |")
print("|---|---:|---:|---:|---:|---:|")
for case in ("first", "rerun", "changed"):
    ours = data[("ours", case)]
    shell = data[("shell", case)]
    ow = statistics.median(w for w, _ in ours)
    sw = statistics.median(w for w, _ in shell)
    oc = statistics.median(c for _, c in ours)
    sc = statistics.median(c for _, c in shell)
    print(f"| {case} | {ow:.3f} s | {sw:.3f} s | {ow / sw:.2f} | {oc:.2f} s | {sc:.2f} s |")
EOF
