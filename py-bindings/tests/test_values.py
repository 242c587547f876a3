"""Values files: set_image golden cases, ValuesDocument, and the git write-back."""

import os
import stat

from datetime import timedelta

import pytest

import cicd_agents

from conftest import git

VALUES = """\
# Default values for app.
image:
  repository: registry.local:5000/app   # where it lives
  tag: "1.0.0"                          # set by CI

sidecars:
  - name: proxy
    image: {repository: envoy, tag: v1.28.0}
"""

GOLDEN = [
    # (key, value, expected text)
    (
        "image.tag",
        "1.10",
        VALUES.replace('"1.0.0"', '"1.10"'),
    ),
    (
        "image.tag",
        "v2.0.0",
        VALUES.replace('"1.0.0"', '"v2.0.0"'),
    ),
    (
        "sidecars[0].image.tag",
        "20240101",
        VALUES.replace("tag: v1.28.0}", "tag: '20240101'}"),
    ),
    (
        "image.repository",
        "registry.local:5000/other",
        VALUES.replace("registry.local:5000/app ", "registry.local:5000/other "),
    ),
]


@pytest.mark.parametrize("key, value, expected", GOLDEN)
def test_set_image_golden(tmp_path, key, value, expected):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    assert cicd_agents.set_image(path, key, value) is True
    assert path.read_text() == expected
    # Idempotent: the same value again changes nothing.
    assert cicd_agents.set_image(str(path), key, value) is False
    assert path.read_text() == expected


def test_set_image_keeps_crlf_and_permissions(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_bytes(b"image:\r\n  tag: old # keep\r\n")
    os.chmod(path, 0o640)
    assert cicd_agents.set_image(path, {"image.tag": "new"}) is True
    assert path.read_bytes() == b"image:\r\n  tag: new # keep\r\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_set_image_errors_change_nothing(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    with pytest.raises(cicd_agents.ValuesError) as caught:
        cicd_agents.set_image(path, {"image.tag": "2.0.0", "image.digest": "sha256:x"})
    assert "key `digest` not found" in str(caught.value)
    assert "line 3" in str(caught.value)  # the `image` mapping
    assert path.read_text() == VALUES
    with pytest.raises(cicd_agents.ValuesError):
        cicd_agents.set_image(path, "image", "x")  # a mapping, not a scalar
    with pytest.raises(cicd_agents.ValuesError):
        cicd_agents.set_image(path, "image.tag", "two\nlines")
    with pytest.raises(cicd_agents.ValuesError):
        cicd_agents.set_image(tmp_path / "missing.yaml", "image.tag", "x")
    with pytest.raises(TypeError):
        cicd_agents.set_image(path, "image.tag")


def test_edit_values_file_reports_changes(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    edit = cicd_agents.edit_values_file(path, [("image.tag", "1.0.0"), ("sidecars[0].image.tag", "v1.29.0")], name="charts/app/values.yaml")
    assert edit.changed
    first, second = edit.changes
    assert (first.path, first.changed, first.old_value, first.line) == ("image.tag", False, "1.0.0", 4)
    assert first.old_style == "double-quoted"
    assert (second.old_value, second.new_value, second.new_style) == ("v1.28.0", "v1.29.0", "plain")
    with pytest.raises(cicd_agents.ValuesError) as caught:
        cicd_agents.edit_values_file(path, {"nope": "x"}, name="charts/app/values.yaml")
    assert "charts/app/values.yaml" in str(caught.value)


def test_values_document():
    doc = cicd_agents.ValuesDocument(VALUES, origin="values.yaml")
    assert doc.get("image.tag") == "1.0.0"
    change = doc.set("image.tag", "yes")
    assert change.changed and change.new_style == "double-quoted"
    assert doc.get("image.tag") == "yes"
    assert 'tag: "yes"' in doc.text and str(doc) == doc.text
    changes = doc.set_all({"image.tag": "3", "image.repository": "r/app"})
    assert [c.new_value for c in changes] == ["3", "r/app"]
    assert doc.document_count == 1
    with pytest.raises(cicd_agents.ValuesError):
        cicd_agents.ValuesDocument("a: [unclosed\n")
    with pytest.raises(cicd_agents.ValuesError) as caught:
        doc.set("image..tag", "x")
    assert "invalid key path" in str(caught.value)


def _chart_repo(testenv, tmp_path, name):
    url, bare = testenv.new_repo(name)
    work = tmp_path / f"{name}-seed"
    work.mkdir()
    (work / "charts" / "app").mkdir(parents=True)
    (work / "charts" / "app" / "values.yaml").write_text(VALUES)
    git("init", "-q", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "chart", cwd=work)
    git("push", "-q", str(bare), "HEAD:main", cwd=work)
    return url, bare


def test_update_values_pushes_to_the_git_server(testenv, tmp_path):
    url, bare = _chart_repo(testenv, tmp_path, testenv.unique("py-chart"))
    outcome = cicd_agents.update_values(
        url,
        "main",
        {"charts/app/values.yaml": {"image.tag": "1.4.2"}},
        author=("cicd-agents", "cicd-agents@example.invalid"),
        token=testenv.git_token,
        image="registry.local:5000/app",
        message="deploy {image} {new_tag} (was {old_tag})",
    )
    assert outcome.changed and outcome.commit
    assert outcome.files == ["charts/app/values.yaml"]
    assert outcome.message.startswith("deploy registry.local:5000/app 1.4.2 (was 1.0.0)")
    assert git("--git-dir", str(bare), "rev-parse", "main").strip() == outcome.commit
    pushed = git("--git-dir", str(bare), "show", "main:charts/app/values.yaml")
    assert pushed == VALUES.replace('"1.0.0"', '"1.4.2"')

    again = cicd_agents.update_values(
        url,
        "main",
        {"charts/app/values.yaml": {"image.tag": "1.4.2"}},
        author=("cicd-agents", "cicd-agents@example.invalid"),
        token=testenv.git_token,
    )
    assert not again.changed and again.commit is None


def test_update_values_fills_the_message_like_the_pipeline_and_takes_a_retry_timeout(testenv, tmp_path):
    # The same chart update as the pipeline run: {image} comes from the edits when not given.
    url, bare = _chart_repo(testenv, tmp_path, testenv.unique("py-chart-msg"))
    outcome = cicd_agents.update_values(
        url,
        "main",
        {"charts/app/values.yaml": {"image.tag": "2.0.0"}},
        author=("cicd-agents", "cicd-agents@example.invalid"),
        token=testenv.git_token,
        message="deploy {image} {new_tag} (was {old_tag})",
        retry_timeout=timedelta(seconds=30),
    )
    assert outcome.message.startswith("deploy charts/app/values.yaml:image 2.0.0 (was 1.0.0)"), outcome.message
    assert outcome.attempts == 1 and 0 < outcome.elapsed < 30
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.update_values(url, "main", {"charts/app/values.yaml": {"image.tag": "3"}},
                                  author=("a", "a@b"), token=testenv.git_token, retry_timeout=0)
    with pytest.raises(TypeError):
        cicd_agents.update_values(url, "main", {"charts/app/values.yaml": {"image.tag": "3"}},
                                  author=("a", "a@b"), token=testenv.git_token, retry_timeout="2m")


def test_update_values_errors(testenv, tmp_path):
    url, bare = _chart_repo(testenv, tmp_path, testenv.unique("py-chart-err"))
    author = ("cicd-agents", "cicd-agents@example.invalid")
    updates = {"charts/app/values.yaml": {"image.tag": "9.9.9"}}
    with pytest.raises(cicd_agents.AuthError):
        cicd_agents.update_values(url, "main", updates, author=author, token="wrong-token")
    with pytest.raises(cicd_agents.ValuesError):
        cicd_agents.update_values(url, "main", {"charts/app/values.yaml": {"image.nope": "1"}}, author=author, token=testenv.git_token)
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.update_values(url, "main", updates, author=author, token=testenv.git_token, message="{unknown}")
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.update_values("http://example.com/x.git", "main", updates, author=author, token=testenv.git_token)

    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'deploys are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(cicd_agents.GitPushRejected) as caught:
        cicd_agents.update_values(url, "main", updates, author=author, token=testenv.git_token)
    assert caught.value.branch == "main"
    assert isinstance(caught.value, cicd_agents.GitError)
    assert testenv.git_token not in str(caught.value)
