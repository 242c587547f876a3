"""The README's first Python example runs as written (against the test environment)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

READMES = [
    Path(__file__).resolve().parents[1] / "README.md",
    Path(__file__).resolve().parents[2] / "README.md",
]


@pytest.mark.parametrize("readme", READMES, ids=["py-bindings", "top-level"])
def test_readme_example_runs(testenv, make_context, readme):
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks, "no python example in the README"
    example = blocks[0]
    assert len(example.strip().splitlines()) <= 10
    # Only the registry differs: the test environment's instead of localhost:5000.
    repository = f"pytest/readme-{testenv.unique('r')}"
    code = example.replace("localhost:5000/app", f"{testenv.registry}/{repository}")
    context = make_context("FROM {base}\nCOPY hello.txt /hello.txt\n", files={"hello.txt": "hi\n"})
    env = dict(os.environ, BUILDKIT_HOST=testenv.docker_addr)
    done = subprocess.run([sys.executable, "-c", code], cwd=context, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    digest = testenv.registry_digest(repository, "dev")
    assert f"pushed {digest}" in done.stdout, done.stdout + done.stderr
    assert "BuildKit v" in done.stdout
