"""`pipeline.build: codebuild`: the CodeBuild project, its buildspec, its role, and the
pipeline actions that run in it (in-process moto).

moto implements CreateProject, BatchGetProjects and DeleteProject but not UpdateProject:
the repair test stubs UpdateProject with botocore's Stubber (that client only), as does
the test of a role CodeBuild cannot assume yet (moto never says so).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import ConfigError, OperationFailed
from sdeliver.plan import Change
from sdeliver.project import Project
from sdeliver.resources import artifacts, codebuild, iam, pipeline, policies

S3_SOURCE = """pipeline:
  source:
    provider: s3
    bucket: drops
    key: dromedary.zip
"""
CODEBUILD = S3_SOURCE + "  build: codebuild\n"
BUILD_ACTIONS = ("Dependencies", "BuildAndPackage", "EndToEnd")


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws
    from sdeliver.local.quirks import _ignore_policy_conditions

    _ignore_policy_conditions()  # the bucket's TLS-only guard: plain HTTP stands in for TLS
    with mock_aws():
        yield


@pytest.fixture
def project_for(project_dir: Path, aws: None):  # type: ignore[no-untyped-def]
    def make(pipeline_yaml: str = CODEBUILD) -> Project:
        path = project_dir / "sdeliver.yaml"
        head, _, _ = path.read_text().partition("pipeline:")
        path.write_text(head + pipeline_yaml)
        config = load_config(path)
        return Project(config=config, aws=Aws(region=config.region))

    return make


def actions(declared: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for s in declared["stages"][1:] for a in s["actions"]]


def shape(declared: dict[str, Any]) -> list[tuple[str, str, int, list[str], list[str]]]:
    return [
        (s["name"], a["name"], a["runOrder"], [i["name"] for i in a["inputArtifacts"]],
         [o["name"] for o in a["outputArtifacts"]])
        for s in declared["stages"] for a in s["actions"]
    ]


def variables(action: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in json.loads(action["configuration"]["EnvironmentVariables"])}


def apply(changes: list[Change], project: Project) -> None:
    for change in changes:
        if change.apply is not None:
            change.apply(project)


def converge(project: Project) -> None:
    """The pipeline's part of reconcile that a CodeBuild project needs: bucket, roles, project."""
    for plan in (artifacts.plan, iam.plan, codebuild.plan):
        apply(plan(project), project)


def codebuild_client():  # type: ignore[no-untyped-def]
    return boto3.client("codebuild", region_name="us-east-1")


# -- configuration ---------------------------------------------------------------------------


def test_codebuild_settings_have_safe_defaults(project_for) -> None:  # type: ignore[no-untyped-def]
    settings = project_for().config.pipeline.codebuild
    assert (settings.image, settings.compute_type, settings.timeout) == (
        "aws/codebuild/standard:7.0", "BUILD_GENERAL1_SMALL", 60)


def test_codebuild_settings_without_build_codebuild_are_refused(project_for) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="apply only with build: codebuild"):
        project_for(S3_SOURCE + "  build: lambda\n"
                    "  codebuild: {compute_type: BUILD_GENERAL1_LARGE}\n")


def test_an_unknown_codebuild_setting_is_refused(project_for) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"pipeline\.codebuild\.privileged: unknown key"):
        project_for(CODEBUILD + "  codebuild: {privileged: true}\n")


# -- the pipeline ----------------------------------------------------------------------------


def test_dependencies_build_and_end_to_end_run_in_the_codebuild_project(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for())
    built = [(a["name"], variables(a)) for a in actions(declared) if a["name"] in BUILD_ACTIONS]
    assert built == [
        ("Dependencies", {"SDELIVER_ACTION": "dependencies"}),
        ("BuildAndPackage", {"SDELIVER_ACTION": "build-and-package"}),
        ("EndToEnd", {"SDELIVER_ACTION": "end-to-end", "SDELIVER_ENV": "test"}),
        ("EndToEnd", {"SDELIVER_ACTION": "end-to-end", "SDELIVER_ENV": "prod"}),
    ]
    for action in actions(declared):
        if action["name"] in BUILD_ACTIONS:
            assert action["actionTypeId"] == {
                "category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}
            assert action["configuration"]["ProjectName"] == "dromedary-pipeline-build"


def test_deploy_actions_still_invoke_the_worker(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for())
    deploys = [a for a in actions(declared) if a["name"] not in BUILD_ACTIONS]
    assert {a["name"] for a in deploys} == {"DeployApp", "DeployAPI", "DeploySite"}
    assert {a["actionTypeId"]["provider"] for a in deploys} == {"Lambda"}
    assert {a["configuration"]["FunctionName"] for a in deploys} == {"dromedary-pipeline-worker"}


def test_names_run_orders_and_artifacts_are_those_of_lambda_mode(project_for) -> None:  # type: ignore[no-untyped-def]
    in_lambda = shape(pipeline.declaration(project_for(S3_SOURCE)))
    assert shape(pipeline.declaration(project_for())) == in_lambda


def test_a_codebuild_action_reads_as_its_user_parameters(project_for) -> None:  # type: ignore[no-untyped-def]
    declared = pipeline.declaration(project_for())
    end_to_end = next(a for a in actions(declared) if a["name"] == "EndToEnd")
    assert pipeline.user_parameters(end_to_end) == {"action": "end-to-end", "env": "test"}


# -- the buildspec ---------------------------------------------------------------------------


def test_the_buildspec_installs_this_sdeliver_from_the_artifact_bucket(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    key = codebuild.wheel_key(project, codebuild.wheel())
    spec = yaml.safe_load(codebuild.buildspec(project, key))
    assert str(spec["version"]) == "0.2"
    install = spec["phases"]["install"]["commands"]
    assert key.startswith("sdeliver/dromedary/codebuild/")
    assert any(f"aws s3 cp --only-show-errors s3://{project.artifact_bucket}/{key} " in c
               for c in install)
    assert install[-1].endswith("-m pip install --quiet --disable-pip-version-check "
                                f"/tmp/sdeliver-wheel/{key.rsplit('/', 1)[1]}")


def test_the_buildspec_runs_the_action_through_sdelivers_entry_point(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    spec = yaml.safe_load(codebuild.buildspec(project, "sdeliver/dromedary/codebuild/x/s.whl"))
    assert spec["phases"]["build"]["commands"] == [
        "/tmp/sdeliver-venv/bin/python -m sdeliver.actions.codebuild"]


def test_the_buildspec_hands_the_whole_tree_on_with_the_release_marker(project_for) -> None:  # type: ignore[no-untyped-def]
    spec = yaml.safe_load(codebuild.buildspec(project_for(), "p/x/s.whl"))
    assert spec["artifacts"]["files"] == ["**/*", ".sdeliver/**/*"]


def test_the_buildspec_leaves_the_build_cache_out_of_the_output_artifact(project_for) -> None:  # type: ignore[no-untyped-def]
    # A second copy of the function and site zips, which no later action reads.
    spec = yaml.safe_load(codebuild.buildspec(project_for(), "p/x/s.whl"))
    assert spec["artifacts"]["exclude-paths"] == [".sdeliver/cache/**/*"]


def test_the_wheel_holds_sdeliver_and_pins_what_it_runs_with() -> None:
    from importlib import metadata

    version = metadata.version("sdeliver")
    built = codebuild.wheel()
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        names = archive.namelist()
        meta = archive.read(f"sdeliver-{version}.dist-info/METADATA").decode()
        record = archive.read(f"sdeliver-{version}.dist-info/RECORD").decode().splitlines()
        entry = next(line for line in record if line.startswith("sdeliver/actions/codebuild.py,"))
        digest = hashlib.sha256(archive.read("sdeliver/actions/codebuild.py")).digest()
    assert built.filename == f"sdeliver-{version}-py3-none-any.whl"
    assert "sdeliver/operations/pipeline.py" in names
    assert not any(n.startswith("sdeliver/templates/") for n in names)
    assert f"Requires-Dist: pydantic=={metadata.version('pydantic')}" in meta
    import base64

    assert entry.split(",")[1] == "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_the_wheel_makes_codebuild_install_awscrt_for_its_own_platform() -> None:
    """CodeBuild's EndToEnd reads a CloudFront-hosted site's live release from the
    KeyValueStore (SigV4A: awscrt); pip there picks the wheel of the image's platform."""
    from importlib import metadata

    built = codebuild.wheel()
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        meta = archive.read(f"sdeliver-{metadata.version('sdeliver')}.dist-info/METADATA")
    assert f"Requires-Dist: awscrt=={metadata.version('awscrt')}" in meta.decode()


def test_the_wheel_is_reproducible() -> None:
    assert codebuild.wheel().data == codebuild.wheel().data


# -- roles -----------------------------------------------------------------------------------


def statements(role: policies.Role) -> list[dict[str, Any]]:
    return [s for policy in role.policies.values() for s in policy["Statement"]]


def as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_the_codebuild_role_trusts_codebuild_only(project_for) -> None:  # type: ignore[no-untyped-def]
    role = codebuild.role(project_for())
    assert role.name == "dromedary-pipeline-build"
    assert role.trust_policy()["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
        "Action": "sts:AssumeRole"}]


def test_the_codebuild_role_logs_to_its_projects_log_group_only(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    logs = [s for s in statements(codebuild.role(project))
            if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    group = project.arn("logs", "log-group:/aws/codebuild/dromedary-pipeline-build")
    assert {r for s in logs for r in as_list(s["Resource"])} == {group, f"{group}:*"}


def test_the_codebuild_role_names_actions_on_this_apps_resources(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    bucket = f"arn:aws:s3:::{project.artifact_bucket}"
    found = statements(codebuild.role(project))
    for statement in found:
        assert all("*" not in action for action in as_list(statement["Action"]))
        assert "*" not in as_list(statement["Resource"])
    objects = {r for s in found for r in as_list(s["Resource"]) if r.startswith(f"{bucket}/")}
    # the pipeline's artifacts (under its name's first 20 characters) and sdeliver's state
    assert objects == {f"{bucket}/dromedary-delivery/*", f"{bucket}/sdeliver/dromedary/*"}
    alias = next(s for s in found if s["Sid"] == "Alias")
    assert alias["Action"] == ["lambda:GetAlias", "lambda:UpdateAlias"]


def test_the_codebuild_role_may_read_each_site_buckets_config_json_only(project_for) -> None:  # type: ignore[no-untyped-def]
    # A site publish reads config.json first: the release the bucket holds, or one under way.
    project = project_for()
    sites = [project.site_bucket(env) for env in project.config.environments]
    found = statements(codebuild.role(project))
    reads = {r for s in found if "s3:GetObject" in as_list(s["Action"])
             for r in as_list(s["Resource"]) if any(f":::{b}" in r for b in sites)}
    assert len(sites) == 2
    assert reads == {f"arn:aws:s3:::{bucket}/config.json" for bucket in sites}


def test_the_codebuild_and_worker_roles_grant_the_same_on_the_site_buckets(project_for) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.resources import worker

    project = project_for()
    site = {"SiteContent", "SiteListing", "SiteConfig"}
    assert [s for s in statements(worker.role(project)) if s.get("Sid") in site] == \
        [s for s in statements(codebuild.role(project)) if s.get("Sid") in site] == \
        policies.site_statements(project)


def test_the_pipeline_role_may_start_builds_of_that_project_only(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    found = statements(pipeline.pipeline_role(project))
    builds = [s for s in found if any(a.startswith("codebuild:") for a in as_list(s["Action"]))]
    assert builds == [{
        "Sid": "Build", "Effect": "Allow",
        "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
        "Resource": project.arn("codebuild", "project/dromedary-pipeline-build")}]


def test_codebuild_is_the_default_runner(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3_SOURCE)
    assert codebuild.enabled(project)
    assert "dromedary-pipeline-build" in [r.name for r in iam.roles(project)]


def test_in_lambda_mode_there_is_no_build_role_or_permission(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for(S3_SOURCE + "  build: lambda\n")
    assert "dromedary-pipeline-build" not in [r.name for r in iam.roles(project)]
    assert "codebuild" not in json.dumps(pipeline.pipeline_role(project).policies)
    assert codebuild.plan(project) == []


def test_the_codebuild_role_is_one_of_the_roles_reconcile_plans(project_for) -> None:  # type: ignore[no-untyped-def]
    assert "dromedary-pipeline-build" in [r.name for r in iam.roles(project_for())]


# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_creates_the_project_with_the_wheel_it_installs(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    [change] = codebuild.plan(project)
    assert (change.action, change.shown_calls) == ("create", [
        "s3.PutObject", "codebuild.CreateProject",
        "codebuild.UpdateProject (the create's answer was lost: ours, adopted)"])
    converge(project)

    [found] = codebuild_client().batch_get_projects(names=["dromedary-pipeline-build"])["projects"]
    assert found["source"]["type"] == found["artifacts"]["type"] == "CODEPIPELINE"
    assert found["serviceRole"] == project.role_arn("dromedary-pipeline-build")
    assert found["environment"]["computeType"] == "BUILD_GENERAL1_SMALL"
    assert {t["key"]: t["value"] for t in found["tags"]}["sdeliver:app"] == "dromedary"
    key = codebuild.wheel_key(project, codebuild.wheel())
    assert key in found["source"]["buildspec"]
    body = boto3.client("s3").get_object(Bucket=project.artifact_bucket, Key=key)["Body"].read()
    assert body == codebuild.wheel().data


def test_a_converged_project_plans_none_without_writing(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    converge(project)
    before = project.aws.stats.operations.copy()
    assert [c.action for c in codebuild.plan(project)] == ["none"]
    called = set(project.aws.stats.operations - before)
    assert called == {"BatchGetProjects", "ListObjectsV2"}  # reads only


def test_a_manual_change_is_shown_and_repaired(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    converge(project)
    cb = codebuild_client()
    [found] = cb.batch_get_projects(names=["dromedary-pipeline-build"])["projects"]
    cb.delete_project(name="dromedary-pipeline-build")  # moto has no UpdateProject: remade
    cb.create_project(
        name=found["name"], description=found["description"], source=found["source"],
        artifacts=found["artifacts"], serviceRole=found["serviceRole"], tags=found["tags"],
        timeoutInMinutes=found["timeoutInMinutes"],
        environment={**found["environment"], "computeType": "BUILD_GENERAL1_LARGE"})

    [change] = codebuild.plan(project)
    assert (change.action, [f.field for f in change.fields]) == ("update", ["environment"])
    assert change.fields[0].old["computeType"] == "BUILD_GENERAL1_LARGE"
    assert change.shown_calls == ["codebuild.UpdateProject"]
    want = codebuild.desired(project, codebuild.wheel_key(project, codebuild.wheel()))
    with Stubber(project.aws.client("codebuild")) as stub:
        stub.add_response("update_project", {"project": {"name": "dromedary-pipeline-build"}}, {
            "name": "dromedary-pipeline-build", "description": ANY, "source": ANY,
            "artifacts": ANY, "serviceRole": ANY, "timeoutInMinutes": 60, "tags": ANY,
            "environment": {**want["environment"], "computeType": "BUILD_GENERAL1_SMALL"}})
        assert change.apply is not None
        change.apply(project)
        stub.assert_no_pending_responses()


def test_a_deleted_wheel_is_uploaded_again_without_touching_the_project(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    converge(project)
    key = codebuild.wheel_key(project, codebuild.wheel())
    boto3.client("s3").delete_object(Bucket=project.artifact_bucket, Key=key)

    [change] = codebuild.plan(project)
    assert (change.action, change.shown_calls) == ("update", ["s3.PutObject"])
    apply([change], project)
    assert [c.action for c in codebuild.plan(project)] == ["none"]


def test_a_project_of_another_app_is_never_adopted(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    converge(project)
    cb = codebuild_client()
    [found] = cb.batch_get_projects(names=["dromedary-pipeline-build"])["projects"]
    cb.delete_project(name="dromedary-pipeline-build")
    cb.create_project(**{k: found[k] for k in (
        "name", "source", "artifacts", "environment", "serviceRole")},
        tags=[{"key": "sdeliver:app", "value": "other"}])

    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'other'"):
        codebuild.plan(project)


def test_creating_waits_until_codebuild_may_assume_the_new_role(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    apply(artifacts.plan(project) + iam.plan(project), project)
    [change] = codebuild.plan(project)
    not_yet = ("CodeBuild is not authorized to perform: sts:AssumeRole on "
               "arn:aws:iam::123456789012:role/sdeliver/dromedary-pipeline-build")
    # moto never answers so (it does not model propagation): stubbed.
    with Stubber(project.aws.client("codebuild")) as stub:
        stub.add_client_error("create_project", "InvalidInputException", not_yet)
        stub.add_response("create_project", {"project": {"name": "dromedary-pipeline-build"}})
        assert change.apply is not None
        change.apply(project)
        stub.assert_no_pending_responses()


def test_destroy_deletes_the_project(project_for) -> None:  # type: ignore[no-untyped-def]
    project = project_for()
    converge(project)
    [change] = codebuild.destroy(project)
    assert change.shown_calls == ["codebuild.DeleteProject"]
    apply([change], project)
    assert codebuild.read(project) is None


def test_reconcile_plans_the_project_before_the_pipeline() -> None:
    from sdeliver.operations import reconcile

    kinds = reconcile.kinds()
    assert kinds.index(iam) < kinds.index(codebuild) < kinds.index(pipeline)
