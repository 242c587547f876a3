#!/usr/bin/env bash
# The README's main command: run the whole pipeline on the local test environment.
#
#   scripts/demo.sh [IMAGE_TAG]
#
# 1. starts the test environment (dockerd + BuildKit, registry, git server) and the demo
#    repositories demo-app.git and demo-chart.git (scripts/testenv.sh up, needs root);
# 2. builds the command line (cargo build -p cicd-agents-cli);
# 3. runs examples/pipeline.yaml: builds demo-app from git at refs/heads/main, pushes
#    $REGISTRY/demo/app:IMAGE_TAG with a registry build cache, writes the tag into
#    charts/demo/values.yaml of demo-chart.git and pushes the commit;
# 4. runs it again with the same tag, which must find nothing to change in the chart.
#
# Prints the image digest and the chart commit. IMAGE_TAG defaults to demo-<timestamp>.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tag="${1:-demo-$(date -u +%Y%m%d%H%M%S)}"

say() { printf '\n==> %s\n' "$*" >&2; }

say "starting the test environment"
eval "$(scripts/testenv.sh up)"

say "building cicd-agents"
cargo build -q -p cicd-agents-cli
cli="${CARGO_TARGET_DIR:-$root/target}/debug/cicd-agents"

report_dir="$(mktemp -d)"
trap 'rm -rf "$report_dir"' EXIT

run_pipeline() {
    "$cli" pipeline run examples/pipeline.yaml \
        --addr "$CICD_TESTENV_DOCKER_ADDR" \
        --set image-tag="$tag" \
        --set registry="$CICD_TESTENV_REGISTRY" \
        --set git-server="$CICD_TESTENV_GIT_URL" \
        --progress "${DEMO_PROGRESS:-plain}" \
        --report-file "$1"
}

# field REPORT EXPRESSION: a value from a JSON run report.
field() {
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {}, {"r": r}) or "")' "$1" "$2"
}

say "run 1: image tag $tag"
run_pipeline "$report_dir/run1.json"
digest="$(field "$report_dir/run1.json" 'r["build"]["digest"]')"
commit="$(field "$report_dir/run1.json" 'r["chart"]["commit"]')"
status1="$(field "$report_dir/run1.json" 'r["chart"]["status"]')"

say "run 2: the same tag again (the chart must not change)"
run_pipeline "$report_dir/run2.json"
status2="$(field "$report_dir/run2.json" 'r["chart"]["status"]')"

echo
echo "image:        $CICD_TESTENV_REGISTRY/demo/app:$tag"
echo "image digest: $digest"
echo "chart commit: ${commit:-no change ($status1)}"
echo "second run:   chart $status2"
if [ "$status2" != "no-change" ]; then
    echo "error: the second run changed the chart" >&2
    exit 1
fi
