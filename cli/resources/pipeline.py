"""The delivery pipeline: CodePipeline, declared from sdeliver.yaml and diffed stage by stage.

Source → Commit (Dependencies, BuildAndPackage) → Acceptance (DeployApp, DeployAPI,
DeploySite, EndToEnd against the first environment) → Production (the same against the
next; a manual Approval first when `pipeline.approval`) → one stage per further
environment. The steps that only call AWS invoke the sdeliver worker function with a
query string of UserParameters; Dependencies, BuildAndPackage and EndToEnd, which run the
project's own commands, run in sdeliver's CodeBuild project (codebuild.py) with
SDELIVER_ACTION / SDELIVER_ENV as the action's environment variables — or in the worker
too with `pipeline.build: lambda` (pipeline_spec.py says which is which).
Names, run orders and artifacts are the same either way. Artifacts live in the artifact
bucket.

A GitHub OAuth token is read from SSM or Secrets Manager only when the pipeline is written;
AWS shows it as "****", and so does the plan.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from typing import Any

from .. import pipeline_spec
from ..aws import PIPELINE_ROLE_PROPAGATION
from ..errors import AwsError, OperationFailed
from ..names import codebuild_name, pipeline_role_names, worker_name
from ..names import pipeline_name as name
from ..names import pipeline_role_name as role_name
from ..plan import Change, FieldChange, call
from ..project import TAG_APP, Project
from . import codebuild, policies, source, worker

KIND = "codepipeline"
MASKED = "****"
# The first run waits at the transition into Commit until the new roles answer.
FIRST_HELD = "Commit"
HOLD_REASON = "sdeliver: waiting for the pipeline's new roles to propagate"
ROLE_WAIT_ATTEMPTS = 10
ROLE_POLL_SECONDS = 3.0
ROLE_SETTLE_SECONDS = 10.0  # IAM's documented "a few seconds" for a new role to be usable
ACTION_KEYS = ("name", "actionTypeId", "runOrder", "configuration", "inputArtifacts",
               "outputArtifacts")
PIPELINE_KEYS = ("roleArn", "artifactStore", "stages", "pipelineType", "executionMode")


def _type(category: str, owner: str, provider: str) -> dict[str, str]:
    return {"category": category, "owner": owner, "provider": provider, "version": "1"}


def _action(
    name: str,
    type_id: dict[str, str],
    run_order: int,
    configuration: dict[str, str],
    inputs: list[str] = (),  # type: ignore[assignment]
    outputs: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": type_id,
        "runOrder": run_order,
        "configuration": configuration,
        "inputArtifacts": [{"name": n} for n in inputs],
        "outputArtifacts": [{"name": n} for n in outputs],
    }


def _invoke(project: Project, run_order: int, action: str, env: str | None,
            inputs: list[str], outputs: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The action as the table says: a CodeBuild build or an invocation of the worker."""
    row = pipeline_spec.get(action)
    name = row.name
    if row.runner(runner(project)) == "codebuild":
        return _build(project, name, run_order, action, env, inputs, outputs)
    params = {"action": action, **({"env": env} if env else {}),
              "maxAttempts": str(row.max_attempts)}
    return _action(
        name, _type("Invoke", "AWS", "Lambda"), run_order,
        {"FunctionName": worker_name(project), "UserParameters": urllib.parse.urlencode(params)},
        inputs, outputs,
    )


def runner(project: Project) -> str:
    """`pipeline.build`: where the actions that run the project's commands run."""
    assert project.config.pipeline is not None
    return project.config.pipeline.build


def _build(project: Project, name: str, run_order: int, action: str, env: str | None,
           inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    variables = [{"name": "SDELIVER_ACTION", "value": action, "type": "PLAINTEXT"}]
    if env:
        variables.append({"name": "SDELIVER_ENV", "value": env, "type": "PLAINTEXT"})
    return _action(
        name, _type("Build", "AWS", "CodeBuild"), run_order,
        {"ProjectName": codebuild_name(project),
         "EnvironmentVariables": json.dumps(variables, separators=(",", ":"))},
        inputs, outputs,
    )


def user_parameters(action: dict[str, Any]) -> dict[str, str]:
    """What a Lambda or CodeBuild action runs, as UserParameters: action, env, ..."""
    configuration = action["configuration"]
    if "EnvironmentVariables" in configuration:
        names = {"SDELIVER_ACTION": "action", "SDELIVER_ENV": "env"}
        return {names[v["name"]]: v["value"]
                for v in json.loads(configuration["EnvironmentVariables"])
                if v["name"] in names}
    text = configuration.get("UserParameters", "")
    return {k: v[-1] for k, v in urllib.parse.parse_qs(text).items()}


def source_action(project: Project) -> dict[str, Any]:
    assert project.config.pipeline is not None
    declared = project.config.pipeline.source
    out = ["SourceOutput"]
    if declared.provider == "github":
        assert declared.repo
        return _action("Source", _type("Source", "AWS", "CodeStarSourceConnection"), 1, {
            "ConnectionArn": source.connection_arn(project),
            "FullRepositoryId": declared.repo,
            "BranchName": declared.branch,
            "OutputArtifactFormat": "CODE_ZIP",  # full clone off
            "DetectChanges": "true",
        }, outputs=out)
    if declared.provider == "github-oauth":  # legacy: AWS deprecates it; polls
        assert declared.repo
        owner, repo = declared.repo.split("/", 1)
        return _action("Source", _type("Source", "ThirdParty", "GitHub"), 1, {
            "Owner": owner, "Repo": repo, "Branch": declared.branch,
            "OAuthToken": MASKED, "PollForSourceChanges": "true",
        }, outputs=out)
    assert declared.bucket and declared.key
    # Started by the EventBridge rule (source.py), not by polling, which AWS deprecates.
    return _action("Source", _type("Source", "AWS", "S3"), 1, {
        "S3Bucket": declared.bucket, "S3ObjectKey": declared.key,
        "PollForSourceChanges": "false",
    }, outputs=out)


def release_stage(project: Project, stage: str, env: str, *, approval: bool) -> dict[str, Any]:
    first = 2 if approval else 1
    actions = [_action("Approval", _type("Approval", "AWS", "Manual"), 1, {})] if approval else []
    actions += [
        _invoke(project, first, "deploy-app", env, ["BuildOutput"]),
        _invoke(project, first, "deploy-api", env, ["BuildOutput"]),
        _invoke(project, first + 1, "deploy-site", env, ["BuildOutput"]),
        _invoke(project, first + 2, "end-to-end", env, ["BuildOutput"]),
    ]
    return {"name": stage, "actions": actions}


def stage_name(index: int, env: str) -> str:
    if index == 0:
        return "Acceptance"
    if index == 1:
        return "Production"
    return env[:1].upper() + env[1:]  # one stage per further environment, named after it


def declaration(project: Project) -> dict[str, Any]:
    """The pipeline as CreatePipeline takes it (the OAuth token masked)."""
    assert project.config.pipeline is not None
    approval = project.config.pipeline.approval
    stages = [
        {"name": "Source", "actions": [source_action(project)]},
        {"name": "Commit", "actions": [
            _invoke(project, 1, "dependencies", None, ["SourceOutput"], ["DependenciesOutput"]),
            _invoke(project, 2, "build-and-package", None, ["DependenciesOutput"],
                    ["BuildOutput"]),
        ]},
    ]
    for index, env in enumerate(project.config.environments):
        stages.append(release_stage(project, stage_name(index, env), env,
                                    approval=approval and index > 0))
    return {
        "name": name(project),
        "roleArn": policies.role_arn(project, role_name(project)),
        "artifactStore": {"type": "S3", "location": project.artifact_bucket},
        "stages": stages,
        "pipelineType": "V2",
        "executionMode": "SUPERSEDED",  # a newer run waiting for a stage replaces an older
    }


# -- reading --------------------------------------------------------------------------------


def read(project: Project) -> dict[str, Any] | None:
    found = project.aws.call(
        "codepipeline", "get_pipeline", resource=f"pipeline {name(project)}", missing=True,
        name=name(project),
    )
    if found is None:
        return None
    return {"pipeline": found["pipeline"], "arn": (found.get("metadata") or {}).get("pipelineArn")}


def read_tags(project: Project, arn: str) -> dict[str, str]:
    tags = project.aws.paginate(
        "codepipeline", "list_tags_for_resource", "tags", resource=f"pipeline {name(project)}",
        resourceArn=arn,
    )
    return {t["key"]: t["value"] for t in tags}


def comparable(pipeline: dict[str, Any]) -> dict[str, Any]:
    """Only what sdeliver declares, in the declared shape (AWS adds defaults and versions)."""
    doc = {key: copy.deepcopy(pipeline.get(key)) for key in PIPELINE_KEYS}
    doc["pipelineType"] = doc["pipelineType"] or "V1"
    doc["executionMode"] = doc["executionMode"] or "SUPERSEDED"
    stages = []
    for stage in pipeline.get("stages") or []:
        actions = []
        for action in stage.get("actions") or []:
            shaped = {key: copy.deepcopy(action.get(key)) for key in ACTION_KEYS}
            shaped["runOrder"] = shaped["runOrder"] or 1
            shaped["configuration"] = shaped["configuration"] or {}
            shaped["inputArtifacts"] = shaped["inputArtifacts"] or []
            shaped["outputArtifacts"] = shaped["outputArtifacts"] or []
            if "OAuthToken" in shaped["configuration"]:
                shaped["configuration"]["OAuthToken"] = MASKED
            actions.append(shaped)
        stages.append({"name": stage.get("name"), "actions": actions})
    doc["stages"] = stages
    return doc


# -- planning -------------------------------------------------------------------------------

# When a create's answer was lost and a retry finds the pipeline ours: brought up to date.
ADOPTED = "the create's answer was lost: ours, adopted"


def plan(project: Project) -> list[Change]:
    if project.config.pipeline is None:
        return []
    want = declaration(project)
    have = read(project)
    if have is None:
        fields = [FieldChange(key, None, value) for key, value in want.items() if key != "name"]
        fields.append(FieldChange("tags", None, project.tags()))
        calls = [call("codepipeline.CreatePipeline"),
                 call("codepipeline.UpdatePipeline", when=ADOPTED)]
        if not project.aws.endpoint_url:  # see hold_first_run
            calls += [call("codepipeline.DisableStageTransition"),
                      call("codepipeline.EnableStageTransition", when="the first run was held")]
        return [Change(KIND, name(project), "create", fields, calls, _create)]
    tags = read_tags(project, have["arn"]) if have["arn"] else {}
    owner = tags.get(TAG_APP)
    if owner not in (None, project.app):
        raise OperationFailed(
            f"pipeline {name(project)} belongs to sdeliver app {owner!r}",
            hint="set pipeline.name in sdeliver.yaml to a name of this app",
        )
    actual = comparable(have["pipeline"])
    fields = _differences(comparable(want), actual)
    merged = {**tags, **project.tags()}
    if merged != tags:
        fields.append(FieldChange("tags", tags, merged))
    if not fields:
        return [Change(KIND, name(project), "none")]
    changing = {f.field for f in fields}
    calls = ([call("codepipeline.UpdatePipeline")] if changing - {"tags"} else []) + (
        [call("codepipeline.TagResource")] if "tags" in changing else []
    )

    def apply(p: Project) -> None:
        if changing - {"tags"}:
            _write(p, "update_pipeline")
        if "tags" in changing:
            p.aws.call(
                "codepipeline", "tag_resource", resource=f"pipeline {name(p)}",
                resourceArn=have["arn"],
                tags=[{"key": k, "value": v} for k, v in sorted(project.tags().items())],
            )

    return [Change(KIND, name(project), "update", fields, calls, apply)]


def _create(project: Project) -> None:
    _write(project, "create_pipeline", tags=project.tags())
    hold_first_run(project)


def hold_first_run(project: Project) -> None:
    """Keep the first execution out of Commit until the new roles answer.

    CreatePipeline starts an execution at once, while the roles created moments earlier
    may still be propagating: the worker or the build could fail with AccessDenied and
    the first release would fail. So the transition into Commit is disabled right after
    the create (Source may run; its revision waits at the transition), every pipeline
    role is read until IAM answers for it, a settle follows, and the transition is
    enabled again — also when waiting fails, so a pipeline is never left held.
    """
    pipeline = name(project)
    where = f"pipeline {pipeline}"
    if project.aws.endpoint_url:  # moto's server and LocalStack answer these calls with a 500
        project.progress.detail(f"{where}: an emulator endpoint: the first run is not held")
        return
    try:
        project.aws.call(
            "codepipeline", "disable_stage_transition", resource=where, pipelineName=pipeline,
            stageName=FIRST_HELD, transitionType="Inbound", reason=HOLD_REASON,
        )
    except AwsError as err:
        if err.code != "NotImplemented":  # moto in process has no such call
            raise
        project.progress.detail(f"{where}: the endpoint cannot hold the first run ({err.code})")
        return
    project.progress.step(f"{where}: first run held before {FIRST_HELD} until its roles answer")
    try:
        _wait_for_roles(project)
    finally:
        project.aws.call(
            "codepipeline", "enable_stage_transition", resource=where, pipelineName=pipeline,
            stageName=FIRST_HELD, transitionType="Inbound",
        )
    project.progress.step(f"{where}: roles answer; first run released into {FIRST_HELD}")


def _wait_for_roles(project: Project) -> None:
    """Every pipeline role readable, then ROLE_SETTLE_SECONDS more (IAM answers GetRole
    before every service sees the role); at most ROLE_WAIT_ATTEMPTS reads a role."""
    for role in pipeline_role_names(project):
        for _ in range(ROLE_WAIT_ATTEMPTS):
            found = project.aws.call("iam", "get_role", resource=f"role {role}",
                                     missing=True, RoleName=role)
            if found is not None:
                break
            project.aws.sleep(ROLE_POLL_SECONDS)
        else:
            project.progress.warn(f"role {role} does not answer yet: releasing the "
                                  "first run anyway")
    project.aws.sleep(ROLE_SETTLE_SECONDS)


def _differences(want: dict[str, Any], have: dict[str, Any]) -> list[FieldChange]:
    fields = [
        FieldChange(key, have.get(key), want[key])
        for key in PIPELINE_KEYS
        if key != "stages" and have.get(key) != want[key]
    ]
    have_stages = {s["name"]: s for s in have["stages"]}
    want_names = [s["name"] for s in want["stages"]]
    for stage in want["stages"]:
        if have_stages.get(stage["name"]) != stage:
            fields.append(FieldChange(f"stage:{stage['name']}", have_stages.get(stage["name"]),
                                      stage))
    for stage in have["stages"]:
        if stage["name"] not in want_names:
            fields.append(FieldChange(f"stage:{stage['name']}", stage, None))
    if [s["name"] for s in have["stages"]] != want_names and not any(
        f.field.startswith("stage:") for f in fields
    ):
        fields.append(FieldChange("stage order", [s["name"] for s in have["stages"]], want_names))
    return fields


def _write(project: Project, operation: str, *, tags: dict[str, str] | None = None) -> None:
    if source.managed_connection(project):
        source.require_connection(project)  # made by the source's change, planned earlier
    pipeline = declaration(project)
    _resolve_token(project, pipeline)
    params: dict[str, Any] = {"pipeline": pipeline}
    if tags:
        params["tags"] = [{"key": k, "value": v} for k, v in sorted(tags.items())]
    try:
        project.aws.call(
            "codepipeline", operation, resource=f"pipeline {name(project)}",
            retry=(PIPELINE_ROLE_PROPAGATION,), **params,
        )
    except AwsError as err:
        if operation != "create_pipeline" or not _already_exists(err):
            raise
        _adopt(project)  # our own create, whose answer was lost


def _already_exists(err: AwsError) -> bool:
    # AWS says PipelineNameInUseException; moto, InvalidStructureException "already exists".
    return err.code == "PipelineNameInUseException" or (
        err.code == "InvalidStructureException" and "already exists" in err.message
    )


def _adopt(project: Project) -> None:
    """The pipeline that already exists under our name, if this app made it; then made to
    match the declaration."""
    have = read(project)
    tags = read_tags(project, have["arn"]) if have and have["arn"] else {}
    if have is None or tags.get(TAG_APP) != project.app:
        raise OperationFailed(
            f"pipeline {name(project)} already exists and was not made by sdeliver for "
            f"{project.app}",
            hint="set pipeline.name in sdeliver.yaml to another name",
        )
    _write(project, "update_pipeline")


def _resolve_token(project: Project, pipeline: dict[str, Any]) -> None:
    """Put the real OAuth token in place of the mask (it is never printed or stored)."""
    assert project.config.pipeline is not None
    where = project.config.pipeline.source.token
    for stage in pipeline["stages"]:
        for action in stage["actions"]:
            if action["configuration"].get("OAuthToken") == MASKED:
                assert where is not None  # the config requires it for github-oauth
                action["configuration"]["OAuthToken"] = read_token(project, where)


def read_token(project: Project, where: str) -> str:
    store, _, ref = where.partition(":")
    if store == "ssm":
        found = project.aws.call(
            "ssm", "get_parameter", resource=f"SSM parameter {ref}", Name=ref, WithDecryption=True
        )
        return str(found["Parameter"]["Value"])
    found = project.aws.call(
        "secretsmanager", "get_secret_value", resource=f"secret {ref}", SecretId=ref
    )
    return str(found["SecretString"])


# -- destroying -----------------------------------------------------------------------------


def destroy(project: Project) -> list[Change]:
    if project.config.pipeline is None:
        return []
    have = read(project)
    if have is None or not have["arn"]:
        return []
    if read_tags(project, have["arn"]).get(TAG_APP) != project.app:
        return []  # never delete what this app did not create

    def apply(p: Project) -> None:
        p.aws.call("codepipeline", "delete_pipeline", resource=f"pipeline {name(p)}",
                   missing=True, name=name(p))

    return [Change(KIND, name(project), "delete", [], [call("codepipeline.DeletePipeline")], apply)]


# -- roles ----------------------------------------------------------------------------------


def roles(project: Project) -> list[policies.Role]:
    """The pipeline's role and the worker's (and the CodeBuild project's, with
    `build: codebuild`), when sdeliver.yaml declares a pipeline."""
    if project.config.pipeline is None:
        return []

    build = [codebuild.role(project)] if codebuild.enabled(project) else []
    events = ([source.events_role(project)]
              if project.config.pipeline.source.provider == "s3" else [])
    return [pipeline_role(project), worker.role(project), *build, *events]


def pipeline_role(project: Project) -> policies.Role:
    """CodePipeline may use the artifact bucket, read its source, invoke only the worker
    and, with `build: codebuild`, start and watch builds of sdeliver's project only."""
    assert project.config.pipeline is not None
    declared = project.config.pipeline.source
    bucket = f"arn:{project.aws.partition}:s3:::{project.artifact_bucket}"
    statements: list[dict[str, Any]] = [
        {"Sid": "Artifacts", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
         "Resource": f"{bucket}/*"},
        {"Sid": "ArtifactBucket", "Effect": "Allow",
         "Action": ["s3:GetBucketVersioning", "s3:GetBucketLocation"], "Resource": bucket},
        {"Sid": "InvokeWorker", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": project.arn("lambda", f"function:{worker_name(project)}")},
    ]
    if codebuild.enabled(project):
        statements.append({"Sid": "Build", "Effect": "Allow",
                           "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                           "Resource": codebuild.project_arn(project)})
    if declared.provider == "github":
        # The connection sdeliver makes has an id only once made: the role (planned before
        # it) may use this account's connections in this region; a declared one, only it.
        arn = declared.connection_arn or project.arn(source.CONNECTIONS, "connection/*")
        service = arn.split(":")[2]  # codestar-connections | codeconnections
        statements.append({"Sid": "Source", "Effect": "Allow",
                           "Action": f"{service}:UseConnection", "Resource": arn})
    elif declared.provider == "s3":
        source_bucket = f"arn:{project.aws.partition}:s3:::{declared.bucket}"
        statements += [
            {"Sid": "Source", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": f"{source_bucket}/{declared.key}"},
            {"Sid": "SourceBucket", "Effect": "Allow", "Action": "s3:GetBucketVersioning",
             "Resource": source_bucket},
        ]
    return policies.Role(
        name=role_name(project),
        service="codepipeline.amazonaws.com",
        policies={"sdeliver-pipeline": {"Version": "2012-10-17", "Statement": statements}},
    )
