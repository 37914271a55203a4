"""The function's execution role: least privilege, tagged, repaired when it drifts."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import boto3
import pytest
from sdeliver.errors import OperationFailed
from sdeliver.project import Project
from sdeliver.resources import iam

ROLE = "dromedary-function"
EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"


@pytest.fixture
def make_project(make_project):  # type: ignore[no-untyped-def]
    """The example without its pipeline: these tests are about the execution role alone
    (the pipeline's roles are tested with the pipeline)."""
    text = EXAMPLE.read_text().split("\npipeline:")[0] + "\n"

    def make(config_text: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
        return make_project(config_text if config_text is not None else text, **kwargs)

    return make


def converge(project: Project) -> None:
    for change in iam.plan(project):
        if change.apply is not None:
            change.apply(project)


def iam_client():  # type: ignore[no-untyped-def]
    return boto3.client("iam", region_name="us-east-1")


def test_the_first_plan_creates_the_execution_role(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    [change] = iam.plan(project)

    assert (change.kind, change.name, change.action) == ("iam-role", ROLE, "create")
    assert change.shown_calls == ["iam.CreateRole", "iam.PutRolePolicy"]


def test_the_role_is_assumable_by_lambda_only_and_lives_under_the_sdeliver_path(
    make_project,  # type: ignore[no-untyped-def]
) -> None:
    project = make_project()
    converge(project)

    role = iam_client().get_role(RoleName=ROLE)["Role"]
    assert role["Path"] == "/sdeliver/"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}
    ]
    assert project.facts["role_arn"] == role["Arn"] == project.role_arn(ROLE)


def test_the_logs_policy_names_actions_and_this_functions_log_group_only(
    make_project,  # type: ignore[no-untyped-def]
) -> None:
    project = make_project()
    converge(project)

    document = iam_client().get_role_policy(RoleName=ROLE, PolicyName="sdeliver-logs")
    statements = document["PolicyDocument"]["Statement"]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                     else s["Action"]))
    assert actions == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                 else s["Resource"])]
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/dromedary-app"
    assert set(resources) == {group, f"{group}:*"}


def test_the_role_is_tagged_with_the_app(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    tags = {t["Key"]: t["Value"] for t in iam_client().list_role_tags(RoleName=ROLE)["Tags"]}
    assert tags["sdeliver:app"] == "dromedary"


def test_a_converged_role_plans_none_without_writing(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    again = make_project()
    writes = again.aws.stats.writes

    [change] = iam.plan(again)

    assert change.action == "none"
    assert again.aws.stats.writes == writes
    assert again.facts["role_arn"] == project.role_arn(ROLE)  # learnt by reading


def test_a_widened_inline_policy_is_reported_and_restored(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    wide = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    iam_client().put_role_policy(RoleName=ROLE, PolicyName="sdeliver-logs",
                                 PolicyDocument=json.dumps(wide))

    [change] = iam.plan(project)
    assert change.action == "update"
    [field] = change.fields
    assert (field.field, field.old) == ("policy:sdeliver-logs", wide)

    assert change.apply is not None
    change.apply(project)
    assert iam.plan(project)[0].action == "none"


def test_a_changed_trust_policy_is_reported_and_restored(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
         "Action": "sts:AssumeRole"}]}
    iam_client().update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(trust))

    [change] = iam.plan(project)
    assert [f.field for f in change.fields] == ["trust_policy"]
    assert change.apply is not None
    change.apply(project)

    assert iam.plan(project)[0].action == "none"


def test_the_users_own_tags_are_kept_and_ours_restored(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    iam_client().untag_role(RoleName=ROLE, TagKeys=["managed-by"])
    iam_client().tag_role(RoleName=ROLE, Tags=[{"Key": "team", "Value": "web"}])

    [change] = iam.plan(project)
    assert change.shown_calls == ["iam.TagRole"]
    assert change.apply is not None
    change.apply(project)

    tags = {t["Key"]: t["Value"] for t in iam_client().list_role_tags(RoleName=ROLE)["Tags"]}
    assert tags["team"] == "web" and tags["managed-by"] == "sdeliver"


def test_url_encoded_policy_documents_are_read_as_data() -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "a:b",
                                                        "Resource": "arn:x:*"}]}

    encoded = urllib.parse.quote(json.dumps(document))

    assert iam.policy_document(encoded) == document
    assert iam.policy_document(document) == document


def test_a_role_of_another_app_is_refused(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    iam_client().create_role(
        RoleName=ROLE, Path="/sdeliver/",
        AssumeRolePolicyDocument=json.dumps(iam.execution_role(project).trust_policy()),
        Tags=[{"Key": "sdeliver:app", "Value": "camel"}],
    )

    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'camel'"):
        iam.plan(project)


def test_destroy_deletes_the_policies_and_the_role(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    [change] = iam.destroy(project)
    assert change.shown_calls == ["iam.DeleteRolePolicy", "iam.DeleteRole"]
    assert change.apply is not None
    change.apply(project)

    assert iam.plan(project)[0].action == "create"


def test_destroy_leaves_a_role_this_app_did_not_create(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    iam_client().create_role(
        RoleName=ROLE, Path="/sdeliver/",
        AssumeRolePolicyDocument=json.dumps(iam.execution_role(project).trust_policy()),
    )

    assert iam.destroy(project) == []
