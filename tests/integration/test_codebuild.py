"""`pipeline.build: codebuild` through the real CLI against the conftest's moto server, and
the build's entry point `python -m sdeliver.actions.codebuild` run as CodeBuild runs it.

moto never runs a build, so the entry point runs here in a subprocess on a job directory,
with the variables CodeBuild and the pipeline action set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdeliver.aws import is_write

from tests.conftest import client
from tests.integration.helpers import CallLog, new_app

pytestmark = pytest.mark.integration

CODEBUILD = """
pipeline:
  source:
    provider: s3
    bucket: drops
    key: app.zip
  build: codebuild
"""


@pytest.fixture
def app_dir(sdeliver, tmp_path: Path, endpoint: str) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "cb", CODEBUILD) as directory:
        yield directory


def app_name(sdeliver, directory: Path) -> str:  # type: ignore[no-untyped-def]
    return str(json.loads(sdeliver("config", "show", "--json", cwd=directory).stdout)["app"])


def test_init_creates_the_project_and_a_second_check_finds_no_drift(  # type: ignore[no-untyped-def]
    sdeliver, app_dir: Path, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sdeliver("init", "--yes", cwd=app_dir)
    assert result.code == 0, result.output
    app = app_name(sdeliver, app_dir)
    [project] = client(endpoint, "codebuild").batch_get_projects(
        names=[f"{app}-pipeline-build"])["projects"]
    assert "python -m sdeliver.actions.codebuild" in project["source"]["buildspec"]
    commit = client(endpoint, "codepipeline").get_pipeline(name=f"{app}-delivery")[
        "pipeline"]["stages"][1]
    assert [(a["name"], a["actionTypeId"]["provider"], a["configuration"]["ProjectName"])
            for a in commit["actions"]] == [
        ("Dependencies", "CodeBuild", f"{app}-pipeline-build"),
        ("BuildAndPackage", "CodeBuild", f"{app}-pipeline-build")]
    client(endpoint, "iam").get_role(RoleName=f"{app}-pipeline-build")

    calls = CallLog(tmp_path / "calls.log", monkeypatch)
    check = sdeliver("reconcile", "--check", cwd=app_dir)
    assert check.code == 0, check.output
    # BatchGetProjects only reads; sdeliver.aws.is_write does not know the BatchGet prefix.
    writes = [c for c in calls.calls()
              if is_write(c.split(" ", 1)[1]) and c != "codebuild BatchGetProjects"]
    assert writes == []


def test_pipeline_run_takes_a_codebuild_app_through_every_stage(sdeliver, app_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert sdeliver("init", "--yes", cwd=app_dir).code == 0
    result = sdeliver("pipeline", "run", "--source", str(app_dir), cwd=app_dir)
    assert result.code == 0, result.output
    for line in ("BuildAndPackage (build)", "EndToEnd (test)", "EndToEnd (prod)"):
        assert line in result.stderr


# -- the build's entry point ---------------------------------------------------------------


@pytest.fixture
def job_dir(project_dir: Path, tmp_path: Path) -> Path:
    """A job directory as CodeBuild extracts an input artifact: the sample source tree."""
    target = tmp_path / "src"
    shutil.copytree(project_dir, target)
    return target


def run_step(job_dir: Path, endpoint: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEBUILD_SRC_DIR": str(job_dir), "SDELIVER_ENDPOINT_URL": endpoint,
           **variables}
    return subprocess.run(
        [sys.executable, "-m", "sdeliver.actions.codebuild"], cwd=job_dir, env=env,
        capture_output=True, text=True, timeout=240, check=False,
    )


def test_the_entry_point_builds_and_packages_the_job_directory(job_dir: Path, endpoint: str) -> None:
    bucket = "dromedary-artifacts-123456789012"
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=bucket)

    done = run_step(job_dir, endpoint, SDELIVER_ACTION="build-and-package",
                    CODEBUILD_RESOLVED_SOURCE_VERSION="0123abcd")
    assert done.returncode == 0, done.stdout + done.stderr
    release = json.loads((job_dir / ".sdeliver" / "release.json").read_text())["release"]
    manifest = json.loads(s3.get_object(
        Bucket=bucket, Key=f"sdeliver/dromedary/artifacts/{release}/release.json")["Body"].read())
    assert (manifest["release"], manifest["source_revision"]) == (release, "0123abcd")
    assert f"release {release} stored" in done.stdout


def test_the_entry_point_hands_on_the_release_marker_but_not_the_build_cache(
    job_dir: Path, endpoint: str
) -> None:
    client(endpoint, "s3").create_bucket(Bucket="dromedary-artifacts-123456789012")

    done = run_step(job_dir, endpoint, SDELIVER_ACTION="build-and-package")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (job_dir / ".sdeliver" / "release.json").is_file()
    assert not (job_dir / ".sdeliver" / "cache").exists()


def test_the_entry_point_refuses_an_unknown_action_in_one_line(job_dir: Path, endpoint: str) -> None:
    done = run_step(job_dir, endpoint, SDELIVER_ACTION="deploy-everything")
    assert done.returncode == 2
    assert done.stderr.startswith("error: SDELIVER_ACTION='deploy-everything' is not one of ")
    assert done.stderr.count("\n") == 1


def test_a_failing_step_exits_1_with_one_line(job_dir: Path, endpoint: str) -> None:
    done = run_step(job_dir, endpoint, SDELIVER_ACTION="end-to-end", SDELIVER_ENV="test")
    assert done.returncode == 1
    assert done.stderr == "error: the input artifact has no .sdeliver/release.json\n"
