"""`sdeliver pipeline show` and `sdeliver pipeline start`, through the real CLI on a moto server.

moto implements CreatePipeline and StartPipelineExecution, so nothing here is stubbed. The
pipeline a `start` test needs is created from `show`'s own output (what `init` would create),
which also proves CreatePipeline accepts it.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client

pytestmark = pytest.mark.integration

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def shown(sdeliver, project_dir: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = sdeliver("pipeline", "show", cwd=project_dir)
    assert result.code == 0, result.output
    return dict(json.loads(result.stdout))


def create_from_show(sdeliver, project_dir: Path, endpoint: str) -> str:  # type: ignore[no-untyped-def]
    declared = shown(sdeliver, project_dir)
    path, _, role = declared["roleArn"].split(":role", 1)[1].rpartition("/")  # /sdeliver, name
    client(endpoint, "iam").create_role(
        Path=f"{path}/", RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
    client(endpoint, "codepipeline").create_pipeline(pipeline=declared)
    return str(declared["name"])


def test_show_prints_the_pipeline_definition_as_json(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    declared = shown(sdeliver, project_dir)
    assert declared["name"] == "dromedary-delivery"
    assert [s["name"] for s in declared["stages"]] == [
        "Source", "Commit", "Acceptance", "Production"]


def env_of(action: dict[str, Any]) -> str | None:
    """The environment a worker action (UserParameters) or a CodeBuild one (SDELIVER_ENV)
    runs against."""
    configuration = action["configuration"]
    if "EnvironmentVariables" in configuration:
        found = {v["name"]: v["value"] for v in json.loads(configuration["EnvironmentVariables"])}
        return found.get("SDELIVER_ENV")
    return dict(urllib.parse.parse_qsl(configuration["UserParameters"])).get("env")


def test_show_names_each_release_action_with_its_run_order_and_environment(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    stages = {s["name"]: s["actions"] for s in shown(sdeliver, project_dir)["stages"]}
    acceptance = [(a["name"], a["runOrder"], env_of(a)) for a in stages["Acceptance"]]
    assert acceptance == [
        ("DeployApp", 1, "test"), ("DeployAPI", 1, "test"), ("DeploySite", 2, "test"),
        ("EndToEnd", 3, "test")]
    assert {env_of(a) for a in stages["Production"]} == {"prod"}
    assert [a["name"] for a in stages["Commit"]] == ["Dependencies", "BuildAndPackage"]


def test_show_without_a_pipeline_declared_is_a_usage_error(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    path = project_dir / "sdeliver.yaml"
    path.write_text(path.read_text().partition("\npipeline:")[0] + "\n")
    result = sdeliver("pipeline", "show", cwd=project_dir)
    assert result.code == 2
    assert "declares no pipeline" in result.stderr
    assert result.stdout == ""


def test_start_prints_the_execution_it_started(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    name = create_from_show(sdeliver, project_dir, endpoint)
    result = sdeliver("pipeline", "start", cwd=project_dir)
    assert result.code == 0, result.output
    executions = client(endpoint, "codepipeline").list_pipeline_executions(pipelineName=name)
    [execution] = executions["pipelineExecutionSummaries"]
    assert f"started pipeline {name}: execution {execution['pipelineExecutionId']}" in (
        result.stderr)


def test_start_with_json_prints_only_the_pipeline_and_execution(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    name = create_from_show(sdeliver, project_dir, endpoint)
    result = sdeliver("--json", "pipeline", "start", cwd=project_dir)
    assert result.code == 0, result.output
    document = json.loads(result.stdout)
    assert document["pipeline"] == name
    found = client(endpoint, "codepipeline").get_pipeline_execution(
        pipelineName=name, pipelineExecutionId=document["execution"])
    assert found["pipelineExecution"]["pipelineName"] == name


def test_start_without_the_pipeline_in_aws_is_a_one_line_error(sdeliver, project_dir: Path, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    result = sdeliver("pipeline", "start", cwd=project_dir)
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: pipeline dromedary-delivery does not exist"
    assert len(lines) <= 2  # the error, and what to do about it
    assert "Traceback" not in result.output
    assert result.stdout == ""
