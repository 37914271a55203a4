"""The delivery pipeline sdeliver declares, creates and repairs (in-process moto).

moto has no CodePipeline job or state API (`get_pipeline_state`): those calls are stubbed
with botocore's Stubber where a test needs them; everything else is moto.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import OperationFailed
from sdeliver.operations import pipeline_aws
from sdeliver.project import Project
from sdeliver.resources import artifacts, iam, pipeline, worker

CONNECTION = "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc"


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def project_for(project_dir: Path, aws: None):  # type: ignore[no-untyped-def]
    def make(pipeline_yaml: str | None = None, *, environments: str | None = None) -> Project:
        path = project_dir / "sdeliver.yaml"
        text = path.read_text()
        head, _, _ = text.partition("pipeline:")
        if environments is not None:
            before, _, after = head.partition("environments:")
            head = before + "environments:\n" + environments + "\ndns:" + after.split("dns:", 1)[1]
        path.write_text(head + (pipeline_yaml or ""))
        config = load_config(path)
        return Project(config=config, aws=Aws(region=config.region))

    return make


GITHUB = f"""pipeline:
  source:
    provider: github
    repo: stelligent/dromedary
    branch: serverless
    connection_arn: {CONNECTION}
"""


def stage(declared: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in declared["stages"] if s["name"] == name)


def summary(stage_: dict[str, Any]) -> list[tuple[str, int, list[str], list[str]]]:
    return [
        (a["name"], a["runOrder"], [i["name"] for i in a["inputArtifacts"]],
         [o["name"] for o in a["outputArtifacts"]])
        for a in stage_["actions"]
    ]


def params(action: dict[str, Any]) -> dict[str, str]:
    """What a Lambda or CodeBuild action runs (CodeBuild ones have no maxAttempts)."""
    if "UserParameters" not in action["configuration"]:
        return pipeline.user_parameters(action)
    return dict(urllib.parse.parse_qsl(action["configuration"]["UserParameters"]))


def role_changes(project: Project) -> list[Any]:
    """The pipeline's roles, planned as iam.plan plans every role once roles() lists them."""
    listed = {r.name for r in iam.roles(project)}
    return [iam.plan_role(project, r) for r in pipeline.roles(project) if r.name not in listed]


def converge(project: Project) -> None:
    """The pipeline's part of reconcile: bucket and roles, then worker and pipeline."""
    for plan in (artifacts.plan, iam.plan, role_changes, worker.plan, pipeline.plan):
        for change in plan(project):
            if change.apply is not None:
                change.apply(project)


def codepipeline():  # type: ignore[no-untyped-def]
    return boto3.client("codepipeline", region_name="us-east-1")


# -- structure ---------------------------------------------------------------------------------


def test_stages_are_source_commit_acceptance_production_in_order(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB))
    assert [s["name"] for s in declared["stages"]] == [
        "Source", "Commit", "Acceptance", "Production"]
    assert declared["name"] == "dromedary-delivery"


def test_commit_installs_dependencies_then_builds_and_packages(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB))
    assert summary(stage(declared, "Commit")) == [
        ("Dependencies", 1, ["SourceOutput"], ["DependenciesOutput"]),
        ("BuildAndPackage", 2, ["DependenciesOutput"], ["BuildOutput"]),
    ]


def test_acceptance_deploys_app_and_api_then_site_then_end_to_end(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB))
    acceptance = stage(declared, "Acceptance")
    assert summary(acceptance) == [
        ("DeployApp", 1, ["BuildOutput"], []),
        ("DeployAPI", 1, ["BuildOutput"], []),
        ("DeploySite", 2, ["BuildOutput"], []),
        ("EndToEnd", 3, ["BuildOutput"], []),
    ]
    assert [params(a) for a in acceptance["actions"]] == [
        {"action": "deploy-app", "env": "test", "maxAttempts": "10"},
        {"action": "deploy-api", "env": "test", "maxAttempts": "10"},
        {"action": "deploy-site", "env": "test", "maxAttempts": "10"},
        {"action": "end-to-end", "env": "test"},  # in CodeBuild, by default
    ]


def test_production_runs_the_same_actions_against_the_next_environment(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB))
    production = stage(declared, "Production")
    assert [a["name"] for a in production["actions"]] == [
        "DeployApp", "DeployAPI", "DeploySite", "EndToEnd"]
    assert {params(a)["env"] for a in production["actions"]} == {"prod"}


def test_every_lambda_action_invokes_the_worker(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB + "  build: lambda\n"))
    invokes = [a for s in declared["stages"][1:] for a in s["actions"]]
    assert {a["actionTypeId"]["provider"] for a in invokes} == {"Lambda"}
    assert {a["configuration"]["FunctionName"] for a in invokes} == {"dromedary-pipeline-worker"}


def test_by_default_the_project_commands_run_in_codebuild_and_aws_steps_in_the_worker(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB))
    providers = {a["name"]: a["actionTypeId"]["provider"]
                 for s in declared["stages"][1:] for a in s["actions"]}
    assert providers == {"Dependencies": "CodeBuild", "BuildAndPackage": "CodeBuild",
                         "DeployApp": "Lambda", "DeployAPI": "Lambda", "DeploySite": "Lambda",
                         "EndToEnd": "CodeBuild"}


def test_approval_puts_a_manual_approval_before_production(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for(GITHUB + "  approval: true\n"))
    production = stage(declared, "Production")
    assert [(a["name"], a["runOrder"]) for a in production["actions"]] == [
        ("Approval", 1), ("DeployApp", 2), ("DeployAPI", 2), ("DeploySite", 3), ("EndToEnd", 4)]
    assert production["actions"][0]["actionTypeId"] == {
        "category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
    assert "Approval" not in [a["name"] for a in stage(declared, "Acceptance")["actions"]]


def test_one_stage_per_further_environment(project_for) -> None:  # type: ignore[no-untyped-def]
    envs = "  test: {}\n  staging: {}\n  prod: {}\n"
    declared = pipeline.declaration(project_for(GITHUB, environments=envs))
    assert [s["name"] for s in declared["stages"]] == [
        "Source", "Commit", "Acceptance", "Production", "Prod"]
    assert {params(a)["env"] for a in stage(declared, "Production")["actions"]} == {"staging"}


def test_github_source_uses_the_connection_without_a_full_clone(project_for) -> None:  # type: ignore[no-untyped-def]
    source = stage(pipeline.declaration(project_for(GITHUB)), "Source")["actions"][0]
    assert source["actionTypeId"]["provider"] == "CodeStarSourceConnection"
    assert source["configuration"] == {
        "ConnectionArn": CONNECTION, "FullRepositoryId": "stelligent/dromedary",
        "BranchName": "serverless", "OutputArtifactFormat": "CODE_ZIP", "DetectChanges": "true"}
    assert source["outputArtifacts"] == [{"name": "SourceOutput"}]


def test_github_oauth_source_shows_the_token_masked(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB.replace("provider: github", "provider: github-oauth").replace(
        f"connection_arn: {CONNECTION}", "token: ssm:/dromedary/github-token"))
    source = stage(pipeline.declaration(project), "Source")["actions"][0]
    assert (source["actionTypeId"]["owner"], source["actionTypeId"]["provider"]) == (
        "ThirdParty", "GitHub")
    assert source["configuration"]["OAuthToken"] == "****"
    assert (source["configuration"]["Owner"], source["configuration"]["Repo"]) == (
        "stelligent", "dromedary")


def test_s3_source_reads_the_declared_object(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for("pipeline:\n  source:\n    provider: s3\n    bucket: drops\n"
                          "    key: dromedary.zip\n")
    source = stage(pipeline.declaration(project), "Source")["actions"][0]
    assert source["actionTypeId"]["provider"] == "S3"
    assert source["configuration"]["S3Bucket"] == "drops"
    assert source["configuration"]["S3ObjectKey"] == "dromedary.zip"


def test_artifacts_are_kept_in_the_artifact_bucket(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    assert pipeline.declaration(project)["artifactStore"] == {
        "type": "S3", "location": project.artifact_bucket}


def test_without_a_pipeline_nothing_is_planned(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(None)
    assert pipeline.plan(project) == []
    assert worker.plan(project) == []
    assert pipeline.roles(project) == []


# -- roles -------------------------------------------------------------------------------------


def test_the_pipeline_role_trusts_codepipeline_and_invokes_only_the_worker(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    role = pipeline.pipeline_role(project)
    assert role.service == "codepipeline.amazonaws.com"
    statements = role.policies["sdeliver-pipeline"]["Statement"]
    invoke = [s for s in statements if "lambda" in json.dumps(s["Action"])]
    assert invoke == [{
        "Sid": "InvokeWorker", "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": project.arn("lambda", "function:dromedary-pipeline-worker")}]
    connection = next(s for s in statements if s["Sid"] == "Source")
    assert (connection["Action"], connection["Resource"]) == (
        "codestar-connections:UseConnection", CONNECTION)


def test_the_worker_role_names_every_action_and_scopes_to_the_app(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    role = worker.role(project)
    assert role.service == "lambda.amazonaws.com"
    for policy in role.policies.values():
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [
                statement["Action"]]
            assert all("*" not in action for action in actions)
            if statement["Sid"] != "JobResults":  # PutJob*Result has no resource type
                assert statement["Resource"] != "*"
    function = next(s for s in role.policies["sdeliver-worker"]["Statement"]
                    if s["Sid"] == "Function")
    assert function["Resource"] == [project.function_arn, f"{project.function_arn}:*"]


# -- reconcile ---------------------------------------------------------------------------------


def test_reconcile_creates_the_pipeline_then_has_nothing_to_do(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    converge(project)

    found = codepipeline().get_pipeline(name="dromedary-delivery")["pipeline"]
    assert [s["name"] for s in found["stages"]] == [
        "Source", "Commit", "Acceptance", "Production"]
    assert found["roleArn"] == project.role_arn("dromedary-pipeline")
    assert [c.action for c in pipeline.plan(project)] == ["none"]
    assert [c.action for c in worker.plan(project)] == ["none"]


def test_reconcile_shows_and_repairs_a_manual_change(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    converge(project)
    cp = codepipeline()
    changed = cp.get_pipeline(name="dromedary-delivery")["pipeline"]
    acceptance = next(s for s in changed["stages"] if s["name"] == "Acceptance")
    acceptance["actions"] = [a for a in acceptance["actions"] if a["name"] != "EndToEnd"]
    cp.update_pipeline(pipeline=changed)

    [change] = pipeline.plan(project)
    assert change.action == "update"
    assert [f.field for f in change.fields] == ["stage:Acceptance"]
    assert change.shown_calls == ["codepipeline.UpdatePipeline"]
    assert change.apply is not None
    change.apply(project)
    assert [c.action for c in pipeline.plan(project)] == ["none"]


def test_github_oauth_token_is_read_from_secrets_manager_when_written(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB.replace("provider: github", "provider: github-oauth").replace(
        f"connection_arn: {CONNECTION}", "token: secretsmanager:dromedary/github"))
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="dromedary/github", SecretString="ghp_secret")
    converge(project)

    found = codepipeline().get_pipeline(name="dromedary-delivery")["pipeline"]
    source = found["stages"][0]["actions"][0]
    assert source["configuration"]["OAuthToken"] == "ghp_secret"  # moto does not mask it
    plan = pipeline.plan(project)
    assert [c.action for c in plan] == ["none"]
    assert "ghp_secret" not in json.dumps(pipeline.declaration(project))


def test_a_pipeline_of_another_app_is_never_adopted(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    converge(project)
    arn = codepipeline().get_pipeline(name="dromedary-delivery")["metadata"]["pipelineArn"]
    codepipeline().tag_resource(resourceArn=arn, tags=[{"key": "sdeliver:app", "value": "other"}])

    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'other'"):
        pipeline.plan(project)


def test_destroy_deletes_the_pipeline_and_the_worker(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    converge(project)
    for change in [*pipeline.destroy(project), *worker.destroy(project)]:
        assert change.apply is not None
        change.apply(project)
    assert pipeline.read(project) is None
    assert worker.read(project) is None


# -- status ------------------------------------------------------------------------------------


def test_status_lists_each_stage_and_action_with_status_revision_and_time(project_for) -> None:  # type: ignore[no-untyped-def]
    import datetime

    project = project_for(GITHUB)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    # moto has no GetPipelineState: stubbed.
    with Stubber(project.aws.client("codepipeline")) as stub:
        stub.add_response("get_pipeline_state", {
            "pipelineName": "dromedary-delivery", "pipelineVersion": 3,
            "stageStates": [{
                "stageName": "Source", "latestExecution": {
                    "pipelineExecutionId": "e-1", "status": "Succeeded"},
                "actionStates": [{
                    "actionName": "Source", "currentRevision": {
                        "revisionId": "abc123", "revisionChangeId": "c", "created": when},
                    "latestExecution": {"status": "Succeeded", "lastStatusChange": when}}],
            }],
        }, {"name": "dromedary-delivery"})
        found = pipeline_aws.status(project)
    assert found["stages"] == [{
        "name": "Source", "status": "Succeeded",
        "actions": [{"name": "Source", "status": "Succeeded", "revision": "abc123",
                     "time": str(when), "summary": None, "message": None}]}]


def test_every_declared_action_is_a_row_of_the_action_table(project_for) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.operations import pipeline_actions

    declared = pipeline.declaration(project_for(GITHUB + "  build: lambda\n"))
    for stage_ in declared["stages"][1:]:
        for action in stage_["actions"]:
            row = pipeline_actions.get(pipeline.user_parameters(action)["action"])
            assert action["name"] == row.name
            assert params(action)["maxAttempts"] == str(row.max_attempts)
            assert ("env" in params(action)) == row.needs_env


def test_a_job_without_max_attempts_gets_its_actions_own_bound() -> None:
    from sdeliver.actions.job import parse_parameters

    assert parse_parameters("action=end-to-end&env=test").max_attempts == 3
    assert parse_parameters("action=deploy-app&env=test").max_attempts == 10


def test_an_unknown_action_is_a_usage_error_naming_the_known_ones() -> None:
    from sdeliver.errors import UsageError
    from sdeliver.operations import pipeline_actions

    with pytest.raises(UsageError) as raised:
        pipeline_actions.get("deploy-everything")
    assert raised.value.hint is not None and "deploy-app" in raised.value.hint


# -- the first run -------------------------------------------------------------------------------
# moto has no DisableStageTransition / EnableStageTransition: botocore's Stubber stands in
# for the codepipeline client only; the roles are moto's.

HELD = {"pipelineName": "dromedary-delivery", "stageName": "Commit", "transitionType": "Inbound"}


def held_project(project_for) -> tuple[Project, list[float]]:  # type: ignore[no-untyped-def]
    from sdeliver.progress import Silent

    project = project_for(GITHUB)
    for plan in (artifacts.plan, iam.plan, role_changes):
        for change in plan(project):
            if change.apply is not None:
                change.apply(project)
    waits: list[float] = []
    project.aws.sleep = waits.append
    project.progress = Silent()
    return project, waits


def test_the_first_run_is_held_before_commit_until_the_roles_answer(project_for) -> None:  # type: ignore[no-untyped-def]
    project, waits = held_project(project_for)
    with Stubber(project.aws.client("codepipeline")) as stub:
        stub.add_response("disable_stage_transition", {},
                          {**HELD, "reason": pipeline.HOLD_REASON})
        stub.add_response("enable_stage_transition", {}, HELD)
        pipeline.hold_first_run(project)
        stub.assert_no_pending_responses()
    assert waits == [pipeline.ROLE_SETTLE_SECONDS]  # every role answered at once, then settle
    lines = project.progress.lines  # type: ignore[attr-defined]
    assert "pipeline dromedary-delivery: first run held before Commit until its roles " \
        "answer" in lines
    assert "pipeline dromedary-delivery: roles answer; first run released into Commit" in lines


def test_a_role_that_never_answers_still_releases_the_first_run_after_a_bounded_wait(project_for) -> None:  # type: ignore[no-untyped-def]
    project, waits = held_project(project_for)
    boto3.client("iam", region_name="us-east-1").delete_role_policy(
        RoleName="dromedary-pipeline", PolicyName="sdeliver-pipeline")
    boto3.client("iam", region_name="us-east-1").delete_role(RoleName="dromedary-pipeline")
    with Stubber(project.aws.client("codepipeline")) as stub:
        stub.add_response("disable_stage_transition", {},
                          {**HELD, "reason": pipeline.HOLD_REASON})
        stub.add_response("enable_stage_transition", {}, HELD)
        pipeline.hold_first_run(project)
        stub.assert_no_pending_responses()
    assert waits.count(pipeline.ROLE_POLL_SECONDS) == pipeline.ROLE_WAIT_ATTEMPTS
    assert any("role dromedary-pipeline does not answer yet" in line
               for line in project.progress.lines)  # type: ignore[attr-defined]


def test_the_transition_is_enabled_again_when_waiting_fails(project_for) -> None:  # type: ignore[no-untyped-def]
    project, _ = held_project(project_for)

    def broken(seconds: float) -> None:
        raise KeyboardInterrupt

    project.aws.sleep = broken
    with Stubber(project.aws.client("codepipeline")) as stub:
        stub.add_response("disable_stage_transition", {},
                          {**HELD, "reason": pipeline.HOLD_REASON})
        stub.add_response("enable_stage_transition", {}, HELD)
        with pytest.raises(KeyboardInterrupt):
            pipeline.hold_first_run(project)
        stub.assert_no_pending_responses()


def test_creating_the_pipeline_holds_its_first_run(project_for, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    held: list[str] = []
    monkeypatch.setattr(pipeline, "hold_first_run", lambda p: held.append(pipeline.name(p)))
    monkeypatch.setenv("SDELIVER_STRICT_PLANS", "0")  # the hold, faked, makes none of its calls
    project = project_for(GITHUB)
    [change] = pipeline.plan(project)
    assert "codepipeline.DisableStageTransition" in change.shown_calls
    converge(project)
    assert held == ["dromedary-delivery"]
