#!/usr/bin/env bash
# Runs the Python binding tests (py-bindings/tests) against the real test
# environment, on a fresh machine too:
#
#   1. creates a virtualenv (target/py-venv, under $CARGO_TARGET_DIR if set),
#   2. installs maturin, pytest, pytest-asyncio, mypy, typing_extensions and
#      python-on-whales (for its compatibility test) into it from PyPI, and the schema
#      checkers of test_k8s_schemas.py (pyyaml, kubernetes-validate, hera),
#   3. builds the wheel once (`maturin build`: abi3, the stripped `python-release`
#      profile) into $CARGO_TARGET_DIR/wheels and installs the tests from that wheel,
#   4. checks the type stubs against the module (python -m mypy.stubtest cicd_agents)
#      and the READMEs' Python examples with mypy --strict,
#   5. runs pytest py-bindings/tests -q.
#
# The test environment's variables (CICD_TESTENV_*) come from the caller
# (scripts/test.sh exports them) or from /var/lib/cicd-agents-testenv/env.
# Exits non-zero if anything fails; pytest's summary line is the last output.
#
# Environment:
#   CICD_PYTHON        interpreter to create the venv with (default: python3 >= 3.9 on PATH,
#                      else /usr/bin/python3)
#   CICD_PY_VENV       virtualenv directory (default: $CARGO_TARGET_DIR/py-venv or target/py-venv)
#   CICD_PY_WHEEL_DIR  where the wheel is built (default: $CARGO_TARGET_DIR/wheels or target/wheels)
#   PYTEST_ADDOPTS     extra pytest arguments, as usual
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test-python: error: %s\n' "$*" >&2; exit 1; }

# An interpreter that is at least 3.9 and has the venv module.
usable_python() {
    "$1" - <<'EOF' >/dev/null 2>&1
import sys, venv  # noqa: F401
sys.exit(0 if sys.version_info >= (3, 9) else 1)
EOF
}

# make_venv PYTHON DIR: a virtualenv with pip. Some distributions ship an
# ensurepip whose bundled pip does not run on their Python (Debian with a
# mismatched python3-pip-whl); then the venv is made without pip and pip is
# installed into it by the interpreter's own pip.
make_venv() {
    local python="$1" dir="$2"
    if "$python" -m venv "$dir" >/dev/null 2>&1 && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    rm -rf "$dir"
    say "ensurepip failed; creating the virtualenv without pip and installing pip into it"
    "$python" -m venv --without-pip "$dir" || return 1
    if "$python" -m pip --version >/dev/null 2>&1; then
        "$python" -m pip --python "$dir/bin/python" install --quiet --disable-pip-version-check pip && return 0
    fi
    rm -rf "$dir"
    return 1
}

pick_python() {
    local candidate
    for candidate in ${CICD_PYTHON:-} python3 /usr/bin/python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if usable_python "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

python=$(pick_python) || die "no Python >= 3.9 with the venv module found (on Debian: apt-get install python3-venv)"

target_dir=${CARGO_TARGET_DIR:-$root/target}
venv=${CICD_PY_VENV:-$target_dir/py-venv}

# A venv made by another interpreter (or half-made) is recreated.
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
    say "recreating the broken virtualenv $venv"
    rm -rf "$venv"
fi
if [ -x "$venv/bin/python" ]; then
    venv_base=$("$venv/bin/python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null || true)
    want_base=$("$python" -c 'import sys; print(sys.base_prefix)')
    if [ "$venv_base" != "$want_base" ]; then
        say "recreating $venv for $python"
        rm -rf "$venv"
    fi
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv with $python ($("$python" --version 2>&1))"
    mkdir -p "$(dirname "$venv")"
    make_venv "$python" "$venv" || die "cannot create a virtualenv with pip using $python (on Debian: apt-get install python3-venv python3-pip)"
fi
vpy="$venv/bin/python"
# maturin's build backend runs the `maturin` program it installed next to the interpreter.
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"

say "installing maturin, pytest, pytest-asyncio, mypy, python-on-whales and the schema checkers (pyyaml, kubernetes-validate, hera)"
"$vpy" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$vpy" -m pip install --quiet --disable-pip-version-check "maturin>=1.9,<2" "pytest>=7" "pytest-asyncio>=0.21" \
    "mypy>=1.10" "typing_extensions>=4.6" "python-on-whales>=0.70"
# py-bindings/tests/test_k8s_schemas.py: a YAML 1.1 reader, Kubernetes' schemas, Argo's models.
"$vpy" -m pip install --quiet --disable-pip-version-check "pyyaml>=6" "kubernetes-validate>=1.30" "hera>=5.16"

# The wheel is built once and the tests run against what it installs, as a
# user's `pip install cicd_agents-*.whl` would. Cargo builds into
# $CARGO_TARGET_DIR (default: the workspace's target/); the profile
# (python-release: no debug info, stripped) comes from py-bindings/pyproject.toml.
wheel_dir=${CICD_PY_WHEEL_DIR:-$target_dir/wheels}
say "building the wheel (maturin build) into $wheel_dir"
rm -f "$wheel_dir"/cicd_agents-*.whl
"$vpy" -m maturin build --quiet --manifest-path py-bindings/Cargo.toml --interpreter "$vpy" --out "$wheel_dir"
wheel=$(ls "$wheel_dir"/cicd_agents-*.whl)
say "installing $wheel"
"$vpy" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

# Outside the source tree: the checks and the tests must see the installed package.
cd "$root/py-bindings/tests"
say "checking the type stubs against the module (mypy.stubtest)"
"$vpy" -m mypy.stubtest cicd_agents
say "type-checking the READMEs' Python examples (mypy --strict)"
readme_dir=$(mktemp -d)
"$vpy" - "$root" "$readme_dir" <<'EOF'
import pathlib
import re
import sys

root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for readme in ("README.md", "py-bindings/README.md"):
    blocks = re.findall(r"```python\n(.*?)```", (root / readme).read_text(), re.S)
    if not blocks:
        sys.exit(f"no Python example in {readme}")
    # A README's blocks continue each other (the second uses the first's client).
    (out / (readme.replace("/", "_").replace(".", "_").replace("-", "_") + ".py")).write_text("\n".join(blocks))
EOF
status=0
"$vpy" -m mypy --strict --no-incremental "$readme_dir" || status=$?
rm -rf "$readme_dir"
[ "$status" -eq 0 ] || die "mypy --strict found errors in the READMEs' Python examples"

# The tests must not import the source tree's package (it has no native module).
say "running pytest py-bindings/tests"
"$vpy" -c 'import cicd_agents, sys; print("cicd_agents", cicd_agents.__version__, "on Python", sys.version.split()[0], file=sys.stderr)'
exec "$vpy" -m pytest -q -p no:cacheprovider "$@" .
