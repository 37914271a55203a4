"""Three things once all called "version", named apart: release (r-…), Lambda version,
source revision (the commit, `-dirty` when the build is not exactly that commit)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sdeliver.operations.environment import site_config
from sdeliver.operations.result import ReleaseResult
from sdeliver.shell import source_revision

TEMPLATE_JS = Path(__file__).parents[2] / "cli" / "templates" / "python-api" / "site" / "app.js"


def git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=directory, check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_a_dirty_working_tree_is_marked(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("A = 1\n")
    git(tmp_path, "add", "app.py")
    git(tmp_path, "commit", "-qm", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert source_revision(tmp_path) == head
    (tmp_path / "app.py").write_text("A = 2\n")
    assert source_revision(tmp_path) == f"{head}-dirty"
    assert source_revision(tmp_path, mark_dirty=False) == head  # what `git archive HEAD` holds
    git(tmp_path, "checkout", "-q", "app.py")
    (tmp_path / "new.py").write_text("B = 1\n")  # an untracked file is packaged too
    assert source_revision(tmp_path) == f"{head}-dirty"
    (tmp_path / ".gitignore").write_text("new.py\n.gitignore\n")  # ignored ones are not
    assert source_revision(tmp_path) == head


def test_no_git_checkout_has_no_revision(tmp_path: Path) -> None:
    assert source_revision(tmp_path) is None


def test_the_summary_says_lambda_version_and_json_keeps_version() -> None:
    result = ReleaseResult(env="test", action="deploy", outcome="succeeded", release="r-0123456789ab",
                           version="3", e2e="passed", seq=4)
    assert result.summary() == (
        "deploy test: release r-0123456789ab, Lambda version 3: succeeded, e2e passed (ledger #4)"
    )
    document = result.to_json()
    assert document["version"] == document["lambda_version"] == "3"


def test_config_json_carries_the_source_revision_beside_the_old_version_key(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.operations import environment

    monkeypatch.setattr(environment, "urls", lambda project, env: ("https://api/test/", ""))
    project = make_project()
    manifest = {"site_config": {"title": "T"}, "source_revision": "a" * 40 + "-dirty",
                "version": "a" * 40 + "-dirty"}
    config = site_config(project, "test", manifest, "r-0123456789ab")
    assert config["release"] == "r-0123456789ab"
    assert config["source_revision"] == config["version"] == "a" * 40 + "-dirty"


def test_the_scaffolds_site_shows_the_release_and_its_revision() -> None:
    script = TEMPLATE_JS.read_text()
    assert '" · release " + config.release' in script
    assert '" (revision " + revision + ")"' in script
    assert "config.version" not in script.split("\n", 3)[3]  # no longer shown as "release"
