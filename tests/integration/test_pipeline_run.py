"""`init` creates the pipeline and its worker; `pipeline run` takes an app through every stage.

Against the conftest's moto server with the local gateway in front of it, as `--local`
runs: the e2e tests call the API through the gateway, which runs the aliased handler.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import client
from tests.integration.helpers import new_app

pytestmark = pytest.mark.integration

S3_SOURCE = """
pipeline:
  source:
    provider: s3
    bucket: drops
    key: app.zip
"""


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline command and resource kinds, until the lead registers them for good."""
    from sdeliver import app as cli
    from sdeliver.commands import pipeline as command
    from sdeliver.operations import reconcile
    from sdeliver.resources import iam, pipeline, worker

    if not any(group.name == "pipeline" for group in cli.app.registered_groups):
        monkeypatch.setattr(cli.app, "registered_groups", [
            *cli.app.registered_groups, type(cli.app.registered_groups[0])(
                typer_instance=command.app, name="pipeline")])
    roles = iam.roles
    if "pipeline.roles" not in inspect.getsource(roles):
        monkeypatch.setattr(iam, "roles", lambda p: [*roles(p), *pipeline.roles(p)])
    kinds = reconcile.kinds
    if pipeline not in kinds():
        monkeypatch.setattr(reconcile, "kinds", lambda: [*kinds(), worker, pipeline])


@pytest.fixture
def app_dir(sdeliver, tmp_path: Path, endpoint: str) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "pipe", S3_SOURCE) as directory:
        yield directory


def test_init_creates_the_pipeline_and_its_worker(sdeliver, app_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    result = sdeliver("init", "--yes", cwd=app_dir)
    assert result.code == 0, result.output
    app = app_dir.name and json.loads(sdeliver("config", "show", "--json", cwd=app_dir).stdout)["app"]
    found = client(endpoint, "codepipeline").get_pipeline(name=f"{app}-delivery")["pipeline"]
    assert [s["name"] for s in found["stages"]] == ["Source", "Commit", "Acceptance", "Production"]
    worker = client(endpoint, "lambda").get_function(FunctionName=f"{app}-pipeline-worker")
    assert worker["Configuration"]["Handler"] == "sdeliver.actions.worker.handler"
    check = sdeliver("reconcile", "--check", cwd=app_dir)
    assert check.code == 0, check.output


def test_pipeline_run_takes_the_app_through_every_stage(sdeliver, app_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert sdeliver("init", "--yes", cwd=app_dir).code == 0
    result = sdeliver("pipeline", "run", "--source", str(app_dir), cwd=app_dir)
    assert result.code == 0, result.output
    for line in ("Stage Commit", "BuildAndPackage", "Stage Acceptance", "DeployApp (test)",
                 "EndToEnd (test)", "Stage Production", "EndToEnd (prod)"):
        assert line in result.stderr  # each stage and action as it goes
    releases = set()
    for env in ("test", "prod"):
        entry = json.loads(sdeliver("--json", "history", "--env", env, cwd=app_dir).stdout)[
            "entries"][0]
        assert (entry["action"], entry["outcome"], entry["e2e"]) == ("deploy", "succeeded", "passed")
        releases.add(entry["release"])
    assert len(releases) == 1  # the same release went through both environments
