"""The REST API, its stages and the permissions its aliases give it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from botocore.stub import Stubber
from sdeliver.errors import AwsError
from sdeliver.openapi import build_definition, no_release_definition
from sdeliver.plan import Change
from sdeliver.project import Project
from sdeliver.resources import api

EXAMPLE = Path(__file__).parent.parent.parent / "config" / "sdeliver.example.yaml"
ENVS = ("test", "prod")


@pytest.fixture
def project(make_project) -> Project:
    """The sample project, with the function and its aliases that reconcile makes first."""
    project = make_project()
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": "lambda.amazonaws.com"}}],
    }
    role = project.aws.call("iam", "create_role", RoleName="fixture-role",
                            AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    fn = project.function_name
    project.aws.call("lambda", "create_function", FunctionName=fn, Runtime="python3.12",
                     Role=role, Handler="app.handler", Code={"ZipFile": package.getvalue()})
    version = project.aws.call("lambda", "publish_version", FunctionName=fn)["Version"]
    for env in ENVS:
        project.aws.call("lambda", "create_alias", FunctionName=fn, Name=env,
                         FunctionVersion=version)
    return project


def converge(project: Project) -> list[Change]:
    changes = api.plan(project)
    for change in changes:
        if change.action != "none" and change.apply is not None:
            change.apply(project)
    return changes


def fresh(project: Project) -> Project:
    """The same account seen by a new run: nothing remembered in facts."""
    return Project(config=project.config, aws=project.aws)


def actions(changes: list[Change]) -> dict[str, str]:
    return {change.resource: change.action for change in changes}


def the_api(project: Project) -> dict:
    found = api.find_api(project)
    assert found is not None
    return found


def policy_source_arn(project: Project, env: str) -> str | None:
    found = api.statement(project, env)
    return api.statement_source_arn(found) if found else None


# -- plan on an empty account ----------------------------------------------------------------


def test_plan_on_empty_creates_the_api_a_stage_and_a_permission_per_environment(project):
    changes = api.plan(project)

    assert actions(changes) == {
        "rest-api dromedary": "create",
        "api-stage dromedary/test": "create",
        "api-stage dromedary/prod": "create",
        "lambda-permission dromedary-app:test/sdeliver-apigw-test": "create",
        "lambda-permission dromedary-app:prod/sdeliver-apigw-prod": "create",
    }


def test_planning_writes_nothing(project):
    writes = project.aws.stats.writes

    api.plan(project)

    assert project.aws.stats.writes == writes


def test_the_created_api_is_regional_and_tagged_for_the_app(project):
    converge(project)

    found = the_api(project)
    assert found["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert found["tags"]["sdeliver:app"] == "dromedary"
    assert project.facts["rest_api_id"] == found["id"]


def test_the_api_is_tagged_with_the_digest_of_the_definition_applied_to_it(
    project, monkeypatch
):
    # moto cannot tag a REST API after creation, so the TagResource call itself is checked.
    tagged: list[dict] = []
    real = project.aws.call

    def recording(service: str, operation: str, **params):  # type: ignore[no-untyped-def]
        if operation == "tag_resource":
            tagged.append(params)
        return real(service, operation, **params)

    monkeypatch.setattr(project.aws, "call", recording)
    converge(project)

    arn = api.api_arn(project, the_api(project)["id"])
    assert arn.startswith("arn:aws:apigateway:us-east-1::/restapis/")
    on_api = [params["tags"] for params in tagged if params["resourceArn"] == arn]
    # The app's definition, then the "no release yet" one the new stages' deployment is of:
    # the API holds (and its tag names) that one until the first deploy applies the app's.
    assert on_api == [{"sdeliver:definition": build_definition(project).sha256},
                      {"sdeliver:definition": no_release_definition(project).sha256}]


def test_an_api_without_a_recorded_digest_has_an_unknown_definition():
    assert api.definition_digest({"tags": {"sdeliver:definition": "abc"}}) == "abc"
    assert api.definition_digest({"tags": {"sdeliver:app": "dromedary"}}) is None


def test_the_created_api_has_the_methods_of_the_definition(project):
    api.create_api(project, build_definition(project))

    resources = project.aws.call(
        "apigateway", "get_resources", restApiId=the_api(project)["id"]
    )["items"]
    methods = {r["path"]: set(r.get("resourceMethods") or {}) for r in resources}
    assert methods["/hello"] == {"GET"}
    assert methods["/health"] == {"GET"}


def test_the_default_definition_imports_a_catch_all_any_method(make_project, project):
    text = EXAMPLE.read_text().replace("  openapi: api/openapi.yaml", "")
    project = make_project(text, zone=False)
    api.create_api(project, build_definition(project))

    api_id = the_api(project)["id"]
    resources = project.aws.call("apigateway", "get_resources", restApiId=api_id)["items"]
    methods = {r["path"]: set(r.get("resourceMethods") or {}) for r in resources}
    assert methods == {"/": {"ANY"}, "/{proxy+}": {"ANY"}}
    root = next(r for r in resources if r["path"] == "/")
    integration = project.aws.call("apigateway", "get_integration", restApiId=api_id,
                                   resourceId=root["id"], httpMethod="ANY")
    assert integration["uri"].endswith(":${stageVariables.alias}/invocations")


def test_each_stage_selects_the_alias_of_its_environment(project):
    converge(project)

    api_id = the_api(project)["id"]
    for env in ENVS:
        found = api.stage(project, api_id, env)
        assert found is not None
        assert found["variables"] == {"alias": env}
        assert found["tags"]["sdeliver:env"] == env


def test_each_alias_lets_only_its_own_stage_of_this_api_invoke_it(project):
    converge(project)

    api_id = the_api(project)["id"]
    for env in ENVS:
        found = api.statement(project, env)
        assert found is not None
        assert found["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert api.statement_source_arn(found) == (
            f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/{env}/*/*"
        )


# -- converged, drift --------------------------------------------------------------------------


def test_a_converged_plan_is_all_none_and_makes_no_writes(project):
    converge(project)
    again = fresh(project)
    writes = again.aws.stats.writes

    changes = api.plan(again)

    assert set(actions(changes).values()) == {"none"}
    assert len(changes) == 5
    assert again.aws.stats.writes == writes


def test_a_changed_stage_variable_shows_as_an_update_and_is_repaired(project):
    converge(project)
    api_id = the_api(project)["id"]
    project.aws.call("apigateway", "update_stage", restApiId=api_id, stageName="test",
                     patchOperations=[{"op": "replace", "path": "/variables/alias",
                                       "value": "prod"}])

    changes = api.plan(fresh(project))

    drifted = next(c for c in changes if c.resource == "api-stage dromedary/test")
    assert drifted.action == "update"
    assert [(f.field, f.old, f.new) for f in drifted.fields] == [
        ("variables.alias", "prod", "test")
    ]
    assert drifted.shown_calls == ["apigateway.UpdateStage"]
    converge(fresh(project))
    assert api.stage(project, api_id, "test")["variables"] == {"alias": "test"}
    assert set(actions(api.plan(fresh(project))).values()) == {"none"}


def test_a_redeployed_stage_is_not_touched_by_reconcile(project):
    converge(project)
    api_id = the_api(project)["id"]
    deployment = api.create_deployment(project, api_id, "test", "release 2")
    api.point_stage(project, api_id, "test", deployment)

    changes = converge(fresh(project))

    assert set(actions(changes).values()) == {"none"}
    assert api.stage(project, api_id, "test")["deploymentId"] == deployment


def test_a_permission_for_another_api_is_replaced(project):
    converge(project)
    wrong = "arn:aws:execute-api:us-east-1:123456789012:elsewhere/*/*/*"
    api.remove_permission(project, "prod")
    project.aws.call("lambda", "add_permission", FunctionName=project.function_name,
                     Qualifier="prod", StatementId="sdeliver-apigw-prod",
                     Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                     SourceArn=wrong)

    changes = api.plan(fresh(project))

    drifted = next(c for c in changes if c.kind == "lambda-permission" and ":prod/" in c.name)
    assert drifted.action == "update"
    assert drifted.fields[0].old == wrong
    assert drifted.shown_calls == ["lambda.RemovePermission", "lambda.AddPermission"]
    converge(fresh(project))
    assert policy_source_arn(project, "prod") == api.source_arn(project, the_api(project)["id"], "prod")


def _add_statement(project: Project, env: str, source_arn: str) -> None:
    project.aws.call("lambda", "add_permission", FunctionName=project.function_name,
                     Qualifier=env, StatementId=f"sdeliver-apigw-{env}",
                     Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                     SourceArn=source_arn)


def test_a_statement_letting_every_stage_invoke_an_alias_is_narrowed_to_its_stage(project):
    # What sdeliver granted before: any stage of the API could invoke prod's alias.
    converge(project)
    api_id = the_api(project)["id"]
    api.remove_permission(project, "prod")
    _add_statement(project, "prod", f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/*/*")

    assert _permission_change(project, "prod").action == "update"
    converge(fresh(project))
    assert policy_source_arn(project, "prod") == (
        f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/prod/*/*")


def _permission_change(project: Project, env: str) -> Change:
    return next(c for c in api.plan(fresh(project))
                if c.kind == "lambda-permission" and f":{env}/" in c.name)


def _apply_refused_as_existing(project: Project, change: Change, there: str) -> None:
    """Apply `change` while AWS answers AddPermission "already exists" and the alias's
    policy holds a statement with source ARN `there` (moto accepts a duplicate id)."""
    statement = {"Sid": "sdeliver-apigw-prod", "Effect": "Allow",
                 "Principal": {"Service": "apigateway.amazonaws.com"},
                 "Action": "lambda:InvokeFunction",
                 "Condition": {"ArnLike": {"AWS:SourceArn": there}}}
    with Stubber(project.aws.client("lambda")) as stub:
        stub.add_client_error(
            "add_permission", service_error_code="ResourceConflictException", http_status_code=409,
            service_message="The statement id (sdeliver-apigw-prod) provided already exists.")
        stub.add_response("get_policy", {"Policy": json.dumps({"Statement": [statement]})})
        assert change.apply is not None
        change.apply(project)


def test_a_retried_add_permission_finding_its_own_statement_is_accepted(project):
    # The first AddPermission went through and its answer was lost: the retry is refused
    # ("already exists"), and the statement there is exactly the one wanted.
    converge(project)
    api.remove_permission(project, "prod")
    change = _permission_change(project, "prod")
    wanted = api.source_arn(project, the_api(project)["id"], "prod")
    _apply_refused_as_existing(fresh(project), change, wanted)


def test_an_add_permission_refused_for_another_statement_still_fails(project):
    converge(project)
    api.remove_permission(project, "prod")
    change = _permission_change(project, "prod")
    with pytest.raises(AwsError, match="ResourceConflictException"):
        _apply_refused_as_existing(fresh(project), change, "arn:aws:execute-api:us-east-1:123456789012:other/prod/*/*")


def test_an_api_of_another_app_with_the_same_name_is_never_adopted(project):
    project.aws.call("apigateway", "create_rest_api", name="dromedary",
                     tags={"sdeliver:app": "camel"})

    changes = api.plan(project)

    assert actions(changes)["rest-api dromedary"] == "create"
    converge(project)
    assert the_api(project)["tags"]["sdeliver:app"] == "dromedary"


def test_our_api_is_preferred_over_an_untagged_one_of_the_same_name(project):
    converge(project)
    ours = the_api(project)["id"]
    project.aws.call("apigateway", "create_rest_api", name="dromedary")

    assert the_api(fresh(project))["id"] == ours


# -- release helpers ------------------------------------------------------------------------------


def test_a_deployment_serves_no_stage_until_a_stage_is_pointed_at_it(project):
    converge(project)
    api_id = the_api(project)["id"]
    before = api.stage(project, api_id, "prod")["deploymentId"]

    deployment = api.create_deployment(project, api_id, "prod", "release 2")

    assert api.stage(project, api_id, "prod")["deploymentId"] == before
    api.point_stage(project, api_id, "prod", deployment)
    assert api.stage(project, api_id, "prod")["deploymentId"] == deployment


def test_applying_a_definition_replaces_the_methods(project, project_dir):
    converge(project)
    api_id = the_api(project)["id"]
    path = project_dir / "api" / "openapi.yaml"
    path.write_text(path.read_text().replace("/health:", "/status:"))

    api.apply_definition(project, api_id, build_definition(project))

    resources = project.aws.call("apigateway", "get_resources", restApiId=api_id)["items"]
    assert {r["path"] for r in resources} == {"/", "/hello", "/status"}


# -- prune, destroy ---------------------------------------------------------------------------------


def test_prune_deletes_stages_of_environments_no_longer_declared(make_project, project):
    converge(project)
    api_id = the_api(project)["id"]
    text = EXAMPLE.read_text()
    fewer = make_project(text[: text.index("  prod:")] + text[text.index("dns:"):], zone=False)

    changes = api.prune(fewer)

    assert actions(changes) == {"api-stage dromedary/prod": "delete"}
    changes[0].apply(fewer)
    assert api.stage(project, api_id, "prod") is None
    assert api.stage(project, api_id, "test") is not None


def test_prune_keeps_stages_sdeliver_did_not_create(project):
    converge(project)
    api_id = the_api(project)["id"]
    project.aws.call("apigateway", "create_deployment", restApiId=api_id, stageName="manual")

    assert api.prune(fresh(project)) == []


def test_destroy_removes_the_permissions_and_the_api(project):
    converge(project)

    changes = api.destroy(fresh(project))

    assert actions(changes) == {
        "lambda-permission dromedary-app:test/sdeliver-apigw-test": "delete",
        "lambda-permission dromedary-app:prod/sdeliver-apigw-prod": "delete",
        "rest-api dromedary": "delete",
    }
    for change in changes:
        change.apply(project)
    assert api.find_api(project) is None
    assert all(api.statement(project, env) is None for env in ENVS)
    assert api.destroy(fresh(project)) == []


def test_destroy_leaves_an_api_sdeliver_did_not_create(project):
    project.aws.call("apigateway", "create_rest_api", name="dromedary")

    assert api.destroy(project) == []


# -- creating stages in as few writes as AWS allows -------------------------------------------


def test_new_stages_share_one_deployment_and_carry_their_variables_and_tags(project):
    changes = converge(project)

    stages = [c for c in changes if c.kind == "api-stage"]
    # The first stage's deployment is of the "no release yet" definition, put and tagged.
    again = "apigateway.CreateStage (the first met a change in progress)"
    assert [c.shown_calls for c in stages] == [
        ["apigateway.PutRestApi", "apigateway.TagResource", "apigateway.CreateDeployment",
         "apigateway.CreateStage", again], ["apigateway.CreateStage", again]]
    assert project.aws.stats.operations["CreateDeployment"] == 1
    # The API's definition digest: the app's, then the "no release yet" definition's.
    assert project.aws.stats.operations["TagResource"] == 2
    rest_api = the_api(project)["id"]
    found = [api.stage(project, rest_api, env) for env in ENVS]
    assert all(s is not None for s in found)
    assert len({s["deploymentId"] for s in found}) == 1
    for env, s in zip(ENVS, found, strict=True):
        assert s["variables"] == {"alias": env}
        assert s["tags"] == project.tags(env)


def test_a_stage_added_later_starts_on_a_new_deployment_of_the_api_as_it_is(project):
    converge(project)
    rest_api = the_api(project)["id"]
    first = api.stage(project, rest_api, "test")["deploymentId"]
    project.aws.call("apigateway", "delete_stage", restApiId=rest_api, stageName="prod")

    changes = converge(project)

    assert [c.shown_calls for c in changes if c.action == "create"] == [
        ["apigateway.PutRestApi", "apigateway.TagResource", "apigateway.CreateDeployment",
         "apigateway.CreateStage", "apigateway.CreateStage (the first met a change in progress)"]]
    assert api.stage(project, rest_api, "prod")["deploymentId"] != first


def test_a_stage_whose_creation_answer_was_lost_is_taken_as_made(project):
    converge(project)
    rest_api = the_api(project)["id"]
    project.aws.call("apigateway", "delete_stage", restApiId=rest_api, stageName="prod")
    create = next(c for c in api.plan(project) if c.action == "create")
    # The first attempt landed: the stage exists with what it asked for.
    deployment = api.stage(project, rest_api, "test")["deploymentId"]
    project.aws.call("apigateway", "create_stage", restApiId=rest_api, stageName="prod",
                     deploymentId=deployment, variables={"alias": "prod"},
                     tags=project.tags("prod"))

    assert create.apply is not None
    create.apply(project)

    assert [c.action for c in api.plan(fresh(project)) if c.kind == "api-stage"] == ["none"] * 2


def test_new_stages_serve_no_release_until_the_first_deploy(project):
    converge(project)

    rest_api = the_api(project)["id"]
    stage = api.stage(project, rest_api, "prod")
    assert stage is not None
    deployment = project.aws.call("apigateway", "get_deployment", restApiId=rest_api,
                                  deploymentId=stage["deploymentId"])
    assert deployment["description"] == api.NO_RELEASE
    resources = project.aws.call("apigateway", "get_resources", restApiId=rest_api)["items"]
    root = next(r for r in resources if r["path"] == "/")
    integration = project.aws.call("apigateway", "get_integration", restApiId=rest_api,
                                   resourceId=root["id"], httpMethod="ANY")
    assert integration["type"] == "MOCK"
    answer = integration["integrationResponses"]["503"]
    assert json.loads(answer["responseTemplates"]["application/json"]) == {
        "message": "no release yet"}
