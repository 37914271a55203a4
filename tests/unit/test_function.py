"""The Lambda function and its aliases: configuration reconciled, release pointers left alone."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from sdeliver.errors import ConfigError
from sdeliver.package import package_directory
from sdeliver.project import Project
from sdeliver.resources import function, iam

NAME = "dromedary-app"


def lam():  # type: ignore[no-untyped-def]
    return boto3.client("lambda", region_name="us-east-1")


def converge(project: Project) -> None:
    """The function's part of reconcile: the role first, then the function and aliases."""
    for change in [*iam.plan(project), *function.plan(project)]:
        if change.apply is not None:
            change.apply(project)


def with_config(project_dir: Path, old: str, new: str) -> str:
    text = (project_dir / "sdeliver.yaml").read_text()
    assert old in text
    return text.replace(old, new)


def test_init_creates_the_function_with_the_declared_settings(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    config = lam().get_function(FunctionName=NAME)
    conf = config["Configuration"]
    assert (conf["Runtime"], conf["Handler"], conf["MemorySize"], conf["Timeout"]) == (
        "python3.12", "app.handler", 256, 10)
    assert conf["Environment"]["Variables"] == {"LOG_LEVEL": "info"}
    assert conf["Role"] == project.role_arn("dromedary-function")
    assert conf["Architectures"] == ["x86_64"]
    assert conf["Description"] == "managed by sdeliver"
    assert config["Tags"]["sdeliver:app"] == "dromedary"


def test_init_uploads_the_reproducible_package_of_the_source(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    found = function.read_function(project)
    assert found is not None
    assert found["CodeSha256"] == package_directory(project_dir / "app").sha256_b64


def test_init_publishes_version_1_and_points_every_environment_at_it(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    assert function.latest_published_version(project) == "1"
    for env in ("test", "prod"):
        alias = function.read_alias(project, env)
        assert alias is not None
        assert (alias["FunctionVersion"], alias["Description"]) == ("1", "sdeliver")


def test_a_converged_plan_is_all_none_and_writes_nothing(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())
    project = make_project(zone=False)
    writes = project.aws.stats.writes

    changes = [*iam.plan(project), *function.plan(project)]

    # The example declares a pipeline: its roles (the pipeline's, the worker's and the
    # CodeBuild project's, the default runner) are planned with the function's.
    assert [(c.kind, c.action) for c in changes] == [
        ("iam-role", "none"), ("iam-role", "none"), ("iam-role", "none"), ("iam-role", "none"),
        ("lambda-function", "none"), ("lambda-alias", "none"), ("lambda-alias", "none")]
    assert project.aws.stats.writes == writes


def test_memory_changed_behind_our_back_is_reported_and_repaired(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().update_function_configuration(FunctionName=NAME, MemorySize=1024)

    change = function.plan(project)[0]

    assert change.action == "update"
    assert [(f.field, f.old, f.new) for f in change.fields] == [("memory", 1024, 256)]
    assert change.shown_calls == ["lambda.UpdateFunctionConfiguration"]
    assert change.apply is not None
    change.apply(project)
    assert lam().get_function_configuration(FunctionName=NAME)["MemorySize"] == 256
    assert function.plan(project)[0].action == "none"


def test_a_changed_setting_in_the_config_updates_the_function(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())
    config = with_config(project_dir, "timeout: 10", "timeout: 30")
    project = make_project(config, zone=False)

    change = function.plan(project)[0]
    assert [(f.field, f.old, f.new) for f in change.fields] == [("timeout", 10, 30)]
    assert change.apply is not None
    change.apply(project)

    assert lam().get_function_configuration(FunctionName=NAME)["Timeout"] == 30


def test_reconcile_does_not_touch_the_code(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    before = lam().get_function(FunctionName=NAME)["Configuration"]["CodeSha256"]
    (project_dir / "app" / "new.py").write_text("X = 2\n")

    assert function.plan(project)[0].action == "none"
    assert lam().get_function(FunctionName=NAME)["Configuration"]["CodeSha256"] == before


def test_an_alias_moved_by_hand_is_a_release_and_not_reported(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().update_function_configuration(FunctionName=NAME, Description="v2")
    lam().get_waiter("function_updated_v2").wait(FunctionName=NAME)
    version = lam().publish_version(FunctionName=NAME)["Version"]
    lam().update_alias(FunctionName=NAME, Name="prod", FunctionVersion=version)

    aliases = [c for c in function.plan(project) if c.kind == "lambda-alias"]

    assert [c.action for c in aliases] == ["none", "none"]
    assert lam().get_alias(FunctionName=NAME, Name="prod")["FunctionVersion"] == version


def test_a_missing_alias_is_created_at_the_latest_published_version(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().update_function_configuration(FunctionName=NAME, Description="v2")
    lam().get_waiter("function_updated_v2").wait(FunctionName=NAME)
    latest = lam().publish_version(FunctionName=NAME)["Version"]
    lam().delete_alias(FunctionName=NAME, Name="test")

    [alias] = [c for c in function.plan(project) if c.action != "none"]
    assert (alias.kind, alias.name, alias.shown_calls) == (
        "lambda-alias", f"{NAME}:test", ["lambda.CreateAlias"])
    assert alias.apply is not None
    alias.apply(project)

    assert lam().get_alias(FunctionName=NAME, Name="test")["FunctionVersion"] == latest


SECRET_CONFIG = ("  environment:\n    LOG_LEVEL: info\n",
                 "  environment:\n    LOG_LEVEL: info\n    API_KEY: s3cr3t-value\n"
                 "  secrets: [API_KEY]\n")


def test_secret_values_never_appear_in_a_create_plan(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project(with_config(project_dir, *SECRET_CONFIG))

    change = function.plan(project)[0]

    [env] = [f for f in change.fields if f.field == "environment"]
    assert env.new == {"LOG_LEVEL": "info", "API_KEY": "***"}
    assert "s3cr3t-value" not in json.dumps(change.to_json()) + repr(change)


def test_secret_values_never_appear_in_an_update_plan(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project(with_config(project_dir, *SECRET_CONFIG))
    converge(project)
    lam().update_function_configuration(
        FunctionName=NAME,
        Environment={"Variables": {"LOG_LEVEL": "debug", "API_KEY": "stolen-value"}},
    )

    change = function.plan(project)[0]

    [env] = change.fields
    assert (env.old, env.new) == ({"LOG_LEVEL": "debug", "API_KEY": "***"},
                                  {"LOG_LEVEL": "info", "API_KEY": "***"})
    text = json.dumps(change.to_json()) + repr(change)
    assert "s3cr3t-value" not in text and "stolen-value" not in text
    assert change.apply is not None
    change.apply(project)
    variables = lam().get_function_configuration(FunctionName=NAME)["Environment"]["Variables"]
    assert variables["API_KEY"] == "s3cr3t-value"


def test_prune_deletes_aliases_of_environments_no_longer_declared(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().create_alias(FunctionName=NAME, Name="staging", FunctionVersion="1",
                       Description="sdeliver")
    lam().create_alias(FunctionName=NAME, Name="mine", FunctionVersion="1")

    changes = function.prune(project)

    assert [(c.name, c.action) for c in changes] == [(f"{NAME}:staging", "delete")]
    assert changes[0].apply is not None
    changes[0].apply(project)
    names = {a["Name"] for a in lam().list_aliases(FunctionName=NAME)["Aliases"]}
    assert names == {"test", "prod", "mine"}


def test_destroy_deletes_the_function(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    [change] = function.destroy(project)
    assert change.apply is not None
    change.apply(project)

    assert function.read_function(project) is None


def test_destroy_leaves_a_function_this_app_did_not_create(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().untag_resource(Resource=project.function_arn, TagKeys=["sdeliver:app"])

    assert function.destroy(project) == []


def test_aliases_of_a_function_without_versions_get_a_newly_published_one(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    lam().delete_function(FunctionName=NAME)
    lam().create_function(
        FunctionName=NAME, Runtime="python3.12", Role=project.role_arn("dromedary-function"),
        Handler="app.handler", Code={"ZipFile": package_directory(
            project.config.resolve("app/")).data},
    )

    aliases = [c for c in function.plan(project) if c.kind == "lambda-alias"]
    assert [c.shown_calls for c in aliases] == [
        ["lambda.PublishVersion", "lambda.CreateAlias"], ["lambda.CreateAlias"]]
    for change in aliases:
        assert change.apply is not None
        change.apply(project)

    assert function.latest_published_version(project) == "1"
    assert {a["Name"]: a["FunctionVersion"] for a in function.list_aliases(project)} == {
        "test": "1", "prod": "1"}


def test_a_missing_source_fails_the_plan_naming_the_setting(make_project, project_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project(with_config(project_dir, "source: app/", "source: build/"))

    with pytest.raises(ConfigError, match=r"function\.source build/ does not exist in"):
        function.plan(project)


def test_init_publishes_version_1_in_the_create_call_itself(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    for change in iam.plan(project):
        if change.apply is not None:
            change.apply(project)
    create = function.plan(project)[0]

    made = create.apply(project)

    assert create.shown_calls == [
        "lambda.CreateFunction",
        "lambda.PublishVersion (the create's answer was lost before it published)"]
    assert made == ["lambda.CreateFunction"]
    assert project.aws.stats.operations["PublishVersion"] == 0
    assert project.facts["function_version"] == "1"
    assert function.latest_published_version(project) == "1"


@pytest.mark.parametrize("published", [True, False])
def test_a_create_whose_answer_was_lost_adopts_the_function_and_publishes_at_most_once(
    make_project, published: bool  # type: ignore[no-untyped-def]
) -> None:
    project = make_project()
    for change in iam.plan(project):
        if change.apply is not None:
            change.apply(project)
    create = function.plan(project)[0]
    # What the first attempt made before its answer was lost (Publish may not have run).
    lam().create_function(
        FunctionName=NAME, Runtime="python3.12", Handler="app.handler",
        Role=project.role_arn("dromedary-function"), Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        Tags={"sdeliver:app": "dromedary"}, Publish=published,
    )

    assert create.apply is not None
    create.apply(project)

    assert project.facts["function_version"] == "1"
    assert function.latest_published_version(project) == "1"
