"""How the pipeline hears of a new revision without polling (#14 item 8): a CodeStar
connection sdeliver creates for GitHub, an EventBridge rule for S3 (in-process moto).

moto has no CodeStar connections API (codestar-connections): botocore's Stubber stands in
for that client only, and for codepipeline's GetPipelineState; events, S3 and IAM are moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.operations import pipeline_aws
from sdeliver.progress import Silent
from sdeliver.project import Project
from sdeliver.resources import artifacts, iam, pipeline, policies, source

CREATED = "arn:aws:codestar-connections:us-east-1:123456789012:connection/1234abcd"
GITHUB = "pipeline:\n  source:\n    provider: github\n    repo: stelligent/dromedary\n"
S3 = "pipeline:\n  source:\n    provider: s3\n    bucket: drops\n    key: dromedary.zip\n"


@pytest.fixture
def project_for(project_dir: Path) -> Iterator:  # type: ignore[type-arg]
    from moto import mock_aws

    def make(pipeline_yaml: str) -> Project:
        path = project_dir / "sdeliver.yaml"
        head, _, _ = path.read_text().partition("pipeline:")
        path.write_text(head + pipeline_yaml)
        config = load_config(path)
        return Project(config=config, aws=Aws(region=config.region), progress=Silent())

    with mock_aws():
        yield make


def apply(changes: list) -> None:  # type: ignore[type-arg]
    for change in changes:
        if change.apply is not None:
            change.apply(change_project[0])


change_project: list[Project] = []


def converge(project: Project) -> None:
    change_project[:] = [project]
    for plan in (artifacts.plan, iam.plan, source.plan):
        apply(plan(project))


# -- GitHub: a connection sdeliver makes ----------------------------------------------------------


def test_without_a_connection_arn_init_creates_a_pending_connection_and_prints_its_link(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    with Stubber(project.aws.client("codestar-connections")) as stub:
        stub.add_response("list_connections", {"Connections": []},
                          {"ProviderTypeFilter": "GitHub"})
        [change] = source.plan(project)
        assert (change.action, change.name) == ("create", "dromedary-github")
        stub.add_response("create_connection", {"ConnectionArn": CREATED}, {
            "ConnectionName": "dromedary-github", "ProviderType": "GitHub",
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(project.tags().items())]})
        change.apply(project)
        stub.assert_no_pending_responses()
    [line] = [x for x in project.progress.lines if "PENDING" in x]  # type: ignore[attr-defined]
    assert "authorise it once in the AWS console: https://us-east-1.console.aws.amazon.com/" \
        "codesuite/settings/connections" in line
    assert CREATED in line
    # The pipeline then uses it, and its role may use this account's connections.
    declared = pipeline.declaration(project)
    assert declared["stages"][0]["actions"][0]["configuration"]["ConnectionArn"] == CREATED


def test_the_connection_sdeliver_made_is_found_again_by_name(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    with Stubber(project.aws.client("codestar-connections")) as stub:
        stub.add_response("list_connections", {"Connections": [
            {"ConnectionName": "other-github", "ConnectionArn": CREATED + "0"},
            {"ConnectionName": "dromedary-github", "ConnectionArn": CREATED}]},
            {"ProviderTypeFilter": "GitHub"})
        assert [c.action for c in source.plan(project)] == ["none"]
    assert source.connection_arn(project) == CREATED


def test_the_pipeline_role_may_use_only_this_accounts_connections_in_its_region(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    statements = pipeline.pipeline_role(project).policies["sdeliver-pipeline"]["Statement"]
    [use] = [s for s in statements if s["Sid"] == "Source"]
    assert use["Action"] == "codestar-connections:UseConnection"
    assert use["Resource"] == project.arn("codestar-connections", "connection/*")


def test_pipeline_status_shows_a_pending_connection_with_its_link(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    project.facts["connection_arn"] = CREATED
    with Stubber(project.aws.client("codepipeline")) as pipeline_stub, \
            Stubber(project.aws.client("codestar-connections")) as connections:
        pipeline_stub.add_response("get_pipeline_state", {"pipelineName": "dromedary-delivery",
                                                          "stageStates": []},
                                   {"name": "dromedary-delivery"})
        connections.add_response("get_connection", {"Connection": {
            "ConnectionArn": CREATED, "ConnectionStatus": "PENDING"}}, {"ConnectionArn": CREATED})
        found = pipeline_aws.status(project)
    assert found["connection"]["status"] == "PENDING"
    assert found["connection"]["link"] == source.console_link(project, CREATED)


def test_an_available_connection_needs_no_link(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(GITHUB)
    project.facts["connection_arn"] = CREATED
    with Stubber(project.aws.client("codestar-connections")) as connections:
        connections.add_response("get_connection", {"Connection": {
            "ConnectionArn": CREATED, "ConnectionStatus": "AVAILABLE"}}, {"ConnectionArn": CREATED})
        assert source.connection_status(project) == {
            "arn": CREATED, "status": "AVAILABLE", "link": None}


# -- S3: an EventBridge rule, no polling -----------------------------------------------------------


@pytest.fixture
def drops() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="drops")
    s3.put_bucket_notification_configuration(Bucket="drops", NotificationConfiguration={
        "QueueConfigurations": [{"Id": "theirs", "QueueArn": "arn:aws:sqs:us-east-1:"
                                 "123456789012:q", "Events": ["s3:ObjectRemoved:*"]}]})


def test_the_s3_source_does_not_poll(project_for) -> None:  # type: ignore[no-untyped-def]
    action = pipeline.declaration(project_for(S3))["stages"][0]["actions"][0]
    assert action["configuration"]["PollForSourceChanges"] == "false"


def test_an_eventbridge_rule_starts_the_pipeline_when_the_source_object_changes(project_for, drops) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3)
    converge(project)
    events = boto3.client("events", region_name="us-east-1")
    rule = events.describe_rule(Name="dromedary-pipeline-source")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["drops"]}, "object": {"key": ["dromedary.zip"]}}}
    [target] = events.list_targets_by_rule(Rule="dromedary-pipeline-source")["Targets"]
    assert target["Arn"] == project.arn("codepipeline", "dromedary-delivery")
    assert target["RoleArn"] == policies.role_arn(project, "dromedary-pipeline-events")
    assert [c.action for c in source.plan(project)] == ["none"]


def test_the_source_bucket_sends_events_and_keeps_its_other_notifications(project_for, drops, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # moto accepts EventBridgeConfiguration but does not keep it: the call is what we check.
    project = project_for(S3)
    calls: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    real = project.aws.call

    def recording(service: str, operation: str, **params):  # type: ignore[no-untyped-def]
        calls.append((operation, params))
        return real(service, operation, **params)

    monkeypatch.setattr(project.aws, "call", recording)
    converge(project)
    [put] = [p for op, p in calls if op == "put_bucket_notification_configuration"]
    configuration = put["NotificationConfiguration"]
    assert configuration["EventBridgeConfiguration"] == {}
    assert [q["Id"] for q in configuration["QueueConfigurations"]] == ["theirs"]


def test_the_events_role_may_only_start_this_pipeline(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3)
    role = next(r for r in pipeline.roles(project) if r.name == "dromedary-pipeline-events")
    assert role.service == "events.amazonaws.com"
    [statement] = role.policies["sdeliver-pipeline-events"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "codepipeline:StartPipelineExecution", project.arn("codepipeline", "dromedary-delivery"))


def test_destroy_deletes_the_rule(project_for, drops) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3)
    converge(project)
    apply(source.destroy(project))
    events = boto3.client("events", region_name="us-east-1")
    assert events.list_rules(NamePrefix="dromedary-pipeline-source")["Rules"] == []
    assert source.destroy(project) == []


def test_a_missing_source_bucket_is_a_warning_and_the_rule_is_still_made(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3)
    converge(project)
    assert any("source bucket drops does not exist" in line
               for line in project.progress.lines)  # type: ignore[attr-defined]
    assert boto3.client("events", region_name="us-east-1").describe_rule(
        Name="dromedary-pipeline-source")["State"] == "ENABLED"
