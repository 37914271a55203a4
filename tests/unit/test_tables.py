"""App resources: DynamoDB tables per environment, the function role's statements for
exactly them, and per-environment stage variables carrying their names."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from sdeliver.config import parse_config
from sdeliver.errors import ConfigError, OperationFailed
from sdeliver.operations import reconcile
from sdeliver.operations.iam_policy import operator_policy
from sdeliver.project import Project
from sdeliver.resources import api, iam, tables

from tests.conftest import provisioned

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"
BASE = EXAMPLE.read_text().split("\npipeline:")[0] + "\n"
TABLES = """
tables:
  items:
    key: {name: id, type: S}
    sort_key: {name: created, type: N}
    ttl: expiresAt
    stream: NEW_AND_OLD_IMAGES
    indexes:
      by-owner: {key: {name: owner}}
  sessions:
    key: {name: token}
"""
NAMES = ["dromedary-test-items", "dromedary-test-sessions",
         "dromedary-prod-items", "dromedary-prod-sessions"]
ACCOUNT_REGION = "us-east-1:123456789012"


def with_variables(text: str) -> str:
    return text.replace(
        "    e2e: python -m pytest tests/e2e -q     # run with",
        "    variables: {GREETING: hello, FEATURE_X: 'on'}\n"
        "    e2e: python -m pytest tests/e2e -q     # run with",
    )


@pytest.fixture(autouse=True)
def streams_reenable(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto keeps a disabled stream's label, so enabling a stream again fails there
    ("Cannot enable stream") where DynamoDB makes a new stream: forget the label."""
    from moto.dynamodb.models import DynamoDBBackend

    update = DynamoDBBackend.update_table_streams

    def patched(self, table, spec):  # type: ignore[no-untyped-def]
        update(self, table, spec)
        if not (spec.get("StreamEnabled") or spec.get("StreamViewType")):
            table.latest_stream_label = None

    monkeypatch.setattr(DynamoDBBackend, "update_table_streams", patched)


@pytest.fixture
def project(make_project) -> Project:  # type: ignore[no-untyped-def]
    return make_project(BASE + TABLES)  # type: ignore[no-any-return]


def converge(project: Project, *kinds) -> None:  # type: ignore[no-untyped-def]
    for kind in kinds or (tables,):
        for change in kind.plan(project):
            if change.apply is not None:
                change.apply(project)


def ddb():  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb", region_name="us-east-1")


# -- tables -------------------------------------------------------------------------------


def test_the_first_plan_creates_each_table_in_each_environment(project: Project) -> None:
    changes = tables.plan(project)

    assert [(c.kind, c.action) for c in changes] == [("dynamodb-table", "create")] * 4
    assert sorted(c.name for c in changes) == sorted(NAMES)
    items = next(c for c in changes if c.name == "dromedary-test-items")
    assert items.shown_calls == ["dynamodb.CreateTable", "dynamodb.UpdateTimeToLive"]


def test_a_table_is_on_demand_keyed_streamed_expiring_and_tagged(project: Project) -> None:
    converge(project)

    table = ddb().describe_table(TableName="dromedary-prod-items")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"},
                                  {"AttributeName": "created", "KeyType": "RANGE"}]
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-owner"]
    ttl = ddb().describe_time_to_live(TableName="dromedary-prod-items")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    tags = ddb().list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "sdeliver:app": "dromedary", "sdeliver:env": "prod", "managed-by": "sdeliver"}
    sessions = ddb().describe_table(TableName="dromedary-test-sessions")["Table"]
    assert "StreamSpecification" not in sessions or not sessions["StreamSpecification"].get(
        "StreamEnabled")
    assert [c.action for c in tables.plan(project)] == ["none"] * 4


def test_drift_in_ttl_stream_and_tags_is_found_and_repaired(project: Project) -> None:
    converge(project)
    name = "dromedary-test-items"
    arn = ddb().describe_table(TableName=name)["Table"]["TableArn"]
    ddb().update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": False, "AttributeName": "expiresAt"})
    ddb().update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    ddb().untag_resource(ResourceArn=arn, TagKeys=["sdeliver:env"])
    ddb().tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "web"}])

    [drifted] = [c for c in tables.plan(project) if c.action != "none"]

    assert drifted.name == name
    assert {f.field for f in drifted.fields} == {"stream", "ttl", "tags"}
    assert drifted.shown_calls == ["dynamodb.UpdateTable", "dynamodb.UpdateTimeToLive",
                             "dynamodb.TagResource"]
    converge(project)
    assert [c.action for c in tables.plan(project)] == ["none"] * 4
    tags = ddb().list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["team"] == "web"  # the user's tag stays


def test_a_changed_stream_view_is_disabled_then_enabled(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project(BASE + TABLES)
    converge(project)
    project = make_project(BASE + TABLES.replace("NEW_AND_OLD_IMAGES", "KEYS_ONLY"))

    changed = [c for c in tables.plan(project) if c.action != "none"]

    assert [c.shown_calls for c in changed] == [["dynamodb.UpdateTable", "dynamodb.UpdateTable"]] * 2
    converge(project)
    view = ddb().describe_table(TableName="dromedary-prod-items")["Table"]["StreamSpecification"]
    assert view == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}


def test_a_changed_key_fails_the_plan_with_what_to_do(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project(BASE + TABLES))
    project = make_project(BASE + TABLES.replace("{name: token}", "{name: sid}"))

    with pytest.raises(OperationFailed, match=r"has key token \(S\).*declares sid \(S\)"):
        tables.plan(project)


def test_another_apps_table_is_never_adopted(project: Project) -> None:
    ddb().create_table(
        TableName="dromedary-test-sessions", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "token", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "token", "AttributeType": "S"}],
        Tags=[{"Key": "sdeliver:app", "Value": "camel"}])

    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'camel'"):
        tables.plan(project)


def test_destroy_keeps_the_tables_unless_purge(project: Project) -> None:
    converge(project)

    kept = reconcile.destroy_plan(project, purge=False)
    assert [(c.name, c.action) for c in kept.changes if c.kind == "dynamodb-table"] == [
        (name, "none") for name in NAMES]
    purged = reconcile.destroy_plan(project, purge=True)
    deletes = [c for c in purged.pending if c.kind == "dynamodb-table"]
    assert sorted(c.name for c in deletes) == sorted(NAMES)
    for change in deletes:
        assert change.apply is not None
        change.apply(project)
    assert ddb().list_tables()["TableNames"] == []


def test_reconcile_check_finds_table_drift(project_dir: Path, mocked_aws: None, sdeliver) -> None:  # type: ignore[no-untyped-def]
    config = project_dir / "sdeliver.yaml"
    config.write_text(BASE + TABLES)
    project = provisioned(config)
    converge(project)
    assert reconcile.plan(project).converged
    ddb().update_time_to_live(TableName="dromedary-prod-items", TimeToLiveSpecification={
        "Enabled": False, "AttributeName": "expiresAt"})

    result = sdeliver("reconcile", "--check", "--skip", "pipeline", cwd=project_dir)

    assert result.code == 3, result.output  # drift
    assert "dynamodb-table dromedary-prod-items  update  ttl: null → expiresAt" in result.output


# -- the function's role --------------------------------------------------------------------


def _statements(role: str, policy: str) -> list[dict]:  # type: ignore[type-arg]
    found = boto3.client("iam", region_name="us-east-1").get_role_policy(
        RoleName=role, PolicyName=policy)["PolicyDocument"]
    return list(iam.policy_document(found)["Statement"])


def test_the_role_policy_names_exactly_the_declared_tables(project: Project) -> None:
    converge(project, iam)

    statements = _statements("dromedary-function", "sdeliver-tables")

    table = f"arn:aws:dynamodb:{ACCOUNT_REGION}:table/"
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"TableItems", "TableIndexes", "TableStreams"}
    assert sorted(by_sid["TableItems"]["Resource"]) == sorted(table + n for n in NAMES)
    assert sorted(by_sid["TableIndexes"]["Resource"]) == sorted(
        f"{table}dromedary-{env}-items/index/*" for env in ("test", "prod"))
    assert sorted(by_sid["TableStreams"]["Resource"]) == sorted(
        f"{table}dromedary-{env}-items/stream/*" for env in ("test", "prod"))
    for statement in statements:
        assert all(a.startswith("dynamodb:") and "*" not in a for a in statement["Action"])
        assert "dynamodb:DeleteTable" not in statement["Action"]


def test_a_table_no_longer_declared_leaves_the_role(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project(BASE + TABLES), iam)
    project = make_project(BASE)

    [change] = iam.plan(project)

    assert change.action == "update"
    assert [(f.field, f.new) for f in change.fields] == [("policy:sdeliver-tables", None)]


def test_declared_permissions_become_the_roles_statements(make_project) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace("  environment:\n", (
        "  permissions:\n"
        "    - actions: [s3:GetObject]\n"
        "      resources: ['arn:aws:s3:::dromedary-assets/*']\n"
        "    - sid: Metrics\n"
        "      actions: [cloudwatch:PutMetricData]\n"
        "      resources: ['*']\n"
        "      allow_any_resource: true\n"
        "  environment:\n"), 1)
    converge(make_project(text), iam)

    statements = _statements("dromedary-function", "sdeliver-permissions")

    assert statements == [
        {"Sid": "Declared1", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": ["arn:aws:s3:::dromedary-assets/*"]},
        {"Sid": "Metrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"],
         "Resource": ["*"]},
    ]


@pytest.mark.parametrize(("permission", "message"), [
    ("{actions: ['*'], resources: ['arn:aws:s3:::b']}", "allows every action"),
    ("{actions: ['s3:*'], resources: ['arn:aws:s3:::b']}", "allows every action"),
    ("{actions: [GetObject], resources: ['arn:aws:s3:::b']}", "is not service:Operation"),
    ("{actions: [s3:GetObject], resources: ['*']}", "needs allow_any_resource"),
    ("{actions: [s3:GetObject], resources: [my-bucket]}", "is not an ARN"),
])
def test_a_declared_permission_is_refused_when_too_broad(permission: str, message: str) -> None:
    text = BASE.replace("  environment:\n", f"  permissions:\n    - {permission}\n"
                        "  environment:\n", 1)

    with pytest.raises(ConfigError, match=message):
        parse_config(text, Path("sdeliver.yaml"))


def test_the_operator_policy_covers_the_tables(project: Project) -> None:
    statements = {s["Sid"]: s for s in operator_policy(project)["Statement"]}

    assert "dynamodb:CreateTable" in statements["Tables"]["Action"]
    assert sorted(statements["Tables"]["Resource"]) == sorted(
        f"arn:aws:dynamodb:{ACCOUNT_REGION}:table/{n}" for n in NAMES)
    assert json.dumps(operator_policy(project)).count('"dynamodb:*"') == 0


# -- stage variables --------------------------------------------------------------------------


def test_stages_carry_the_alias_table_names_and_environment_variables(
    project_dir: Path, mocked_aws: None,
) -> None:
    config = project_dir / "sdeliver.yaml"
    config.write_text(with_variables(BASE + TABLES))
    project = provisioned(config)
    api_id = api.rest_api_id(project)
    client = boto3.client("apigateway", region_name="us-east-1")

    test = client.get_stage(restApiId=api_id, stageName="test")["variables"]
    prod = client.get_stage(restApiId=api_id, stageName="prod")["variables"]

    assert test == {"alias": "test", "TABLE_ITEMS": "dromedary-test-items",
                    "TABLE_SESSIONS": "dromedary-test-sessions",
                    "GREETING": "hello", "FEATURE_X": "on"}
    assert prod == {"alias": "prod", "TABLE_ITEMS": "dromedary-prod-items",
                    "TABLE_SESSIONS": "dromedary-prod-sessions"}


def test_stage_variables_drift_is_repaired_and_undeclared_ones_removed(
    project_dir: Path, mocked_aws: None,
) -> None:
    config = project_dir / "sdeliver.yaml"
    config.write_text(with_variables(BASE + TABLES))
    project = provisioned(config)
    api_id = api.rest_api_id(project)
    client = boto3.client("apigateway", region_name="us-east-1")
    client.update_stage(restApiId=api_id, stageName="test", patchOperations=[
        {"op": "replace", "path": "/variables/GREETING", "value": "bye"},
        {"op": "replace", "path": "/variables/STRAY", "value": "x"}])
    config.write_text(BASE + TABLES)  # GREETING and FEATURE_X no longer declared
    project = Project(config=parse_config(config.read_text(), config), aws=project.aws)

    [stage] = [c for c in api.plan(project) if c.name == "dromedary/test"]

    assert stage.action == "update"
    assert {f.field: f.new for f in stage.fields} == {
        "variables.GREETING": None, "variables.FEATURE_X": None, "variables.STRAY": None}
    assert stage.shown_calls == ["apigateway.UpdateStage"]
    converge(project, api)
    assert client.get_stage(restApiId=api_id, stageName="test")["variables"] == {
        "alias": "test", "TABLE_ITEMS": "dromedary-test-items",
        "TABLE_SESSIONS": "dromedary-test-sessions"}


@pytest.mark.parametrize(("variables", "message"), [
    ("{alias: prod}", "set by sdeliver"),
    ("{TABLE_ITEMS: other}", "set by sdeliver to the name of a table"),
    ("{GREETING: hello world}", "not valid for a stage variable"),
    ("{bad-name: x}", "variable name 'bad-name' is not valid"),
])
def test_a_stage_variable_sdeliver_sets_or_api_gateway_refuses_is_refused(
    variables: str, message: str,
) -> None:
    text = (BASE + TABLES).replace(
        "    e2e: python -m pytest tests/e2e -q     # run with",
        f"    variables: {variables}\n    e2e: python -m pytest tests/e2e -q     # run with")

    with pytest.raises(ConfigError, match=message):
        parse_config(text, Path("sdeliver.yaml"))
