"""The REST API, one stage per environment, and the permission each alias gives it.

Reconcile creates the API from its definition when it is missing; after that the
definition is release content (deploy applies it), so reconcile compares only the API's
tags and endpoint type. A stage's `alias` variable selects the function alias; the
deployment a stage serves is a release pointer that only deploy, promote and rollback move.
"""

from __future__ import annotations

import json
from typing import Any

from .. import parallel
from ..aws import APIGW_BUSY, FUNCTION_BUSY
from ..errors import AwsError, OperationFailed
from ..openapi import Definition, build_definition, no_release_definition
from ..plan import Call, Change, FieldChange, call
from ..project import TAG_APP, Project

KIND_API = "rest-api"
KIND_STAGE = "api-stage"
KIND_PERMISSION = "lambda-permission"
TAG_DEFINITION = "sdeliver:definition"
ENDPOINT = "REGIONAL"
# API Gateway answers NotFoundException, which aws.NOT_FOUND does not list.
APIGW_MISSING = ("NotFoundException",)
# The description of the deployment new stages start on (the local gateway knows it by this).
NO_RELEASE = "sdeliver: no release yet"


def api_arn(project: Project, api_id: str) -> str:
    return f"arn:{project.aws.partition}:apigateway:{project.region}::/restapis/{api_id}"


def stage_arn(project: Project, api_id: str, env: str) -> str:
    return f"{api_arn(project, api_id)}/stages/{env}"


def source_arn(project: Project, api_id: str, env: str) -> str:
    """What may invoke an environment's alias: any method and path of the API's stage of
    that environment only (`<api>/<stage>/<method>/<path>`), so test's stage can never
    run prod's alias."""
    return project.arn("execute-api", f"{api_id}/{env}/*/*")


# -- reads ------------------------------------------------------------------------------


def find_api(project: Project, *, digest: bool = True) -> dict[str, Any] | None:
    """This app's REST API: found by name; one tagged for another app is never adopted.

    digest: make sure its tags include the definition digest (GetTags when the listing
    lacks it); a caller that needs only the id saves that round trip."""
    named = [
        api for api in project.aws.paginate(
            "apigateway", "get_rest_apis", "items", resource=f"REST API {project.api_name}"
        )
        if api.get("name") == project.api_name
    ]
    ours = [api for api in named if (api.get("tags") or {}).get(TAG_APP) == project.app]
    untagged = [api for api in named if TAG_APP not in (api.get("tags") or {})]
    candidates = sorted(ours or untagged, key=lambda api: str(api.get("createdDate", "")))
    if not candidates:
        return None
    found: dict[str, Any] = candidates[0]
    if digest and TAG_DEFINITION not in (found.get("tags") or {}):
        found = {**found, "tags": {**(found.get("tags") or {}), **read_tags(project, found)}}
    return found


def rest_api_id(project: Project) -> str:
    """The id of the app's REST API (cached in project.facts); a one-line error when
    `init` has not made it yet."""
    if "rest_api_id" not in project.facts:
        found = find_api(project, digest=False)
        if found is None:
            raise OperationFailed(
                f"REST API {project.api_name} does not exist",
                hint="run 'sdeliver init' (or reconcile) first",
            )
        project.facts["rest_api_id"] = found["id"]
    return str(project.facts["rest_api_id"])


def read_tags(project: Project, api: dict[str, Any]) -> dict[str, str]:
    """The API's tags from GetTags: LocalStack's GetRestApi(s) keep showing the tags the API
    was created with, not those added later (the definition digest). The same on AWS."""
    found = project.aws.call(
        "apigateway", "get_tags", resource=f"REST API {api['id']}",
        # moto's server has no route for a REST API's tags; its in-process mock lacks GetTags.
        ignore=(*APIGW_MISSING, "404", "NotImplemented"),
        resourceArn=api_arn(project, str(api["id"])),
    )
    return dict((found or {}).get("tags") or {})


def definition_digest(api: dict[str, Any]) -> str | None:
    """The sha256 of the definition last applied to the API (None when unknown); `find_api`
    has read it with GetTags when the API's own listing lacked it."""
    return (api.get("tags") or {}).get(TAG_DEFINITION)  # None: unknown, apply it again


def stage(project: Project, api_id: str, env: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = project.aws.call(
        "apigateway", "get_stage", resource=f"stage {env} of REST API {api_id}",
        ignore=APIGW_MISSING, restApiId=api_id, stageName=env,
    )
    return found


def statement(project: Project, env: str) -> dict[str, Any] | None:
    """The alias's policy statement that lets the API invoke it, if any."""
    found = project.aws.call(
        "lambda", "get_policy", resource=f"function {project.function_name}:{env}",
        missing=True, FunctionName=project.function_name, Qualifier=env,
    )
    if not found:
        return None
    sid = project.permission_id(env)
    matches = [s for s in json.loads(found["Policy"]).get("Statement", []) if s.get("Sid") == sid]
    return matches[-1] if matches else None


def statement_source_arn(found: dict[str, Any]) -> str | None:
    condition = found.get("Condition") or {}
    for test in ("ArnLike", "ArnEquals", "StringEquals", "StringLike"):
        value = (condition.get(test) or {}).get("AWS:SourceArn")
        if value:
            return str(value)
    return None


def _permits(project: Project, env: str, want_arn: str) -> bool:
    """The alias's statement is the one sdeliver would add."""
    found = statement(project, env)
    return (
        found is not None
        and found.get("Principal") == {"Service": "apigateway.amazonaws.com"}
        and found.get("Action") == "lambda:InvokeFunction"
        and statement_source_arn(found) == want_arn
    )


# -- writes used by reconcile and by the release commands ---------------------------------


def create_api(project: Project, definition: Definition) -> str:
    """CreateRestApi (tagged) then the definition, rather than ImportRestApi then TagResource.

    Both work on AWS, but moto cannot tag a REST API after creation (its TagResource only
    knows stage ARNs), and an untagged API is one destroy would never delete.
    """
    created = project.aws.call(
        "apigateway", "create_rest_api", resource=f"REST API {project.api_name}",
        retry=(APIGW_BUSY,),
        name=project.api_name,
        description=definition.document["info"]["description"],
        endpointConfiguration={"types": [ENDPOINT]},
        tags=project.tags(),
    )
    api_id = _one_api(project, str(created["id"]))
    project.facts["rest_api_id"] = api_id
    apply_definition(project, api_id, definition)
    return api_id


def _one_api(project: Project, created: str) -> str:
    """The API to keep when a retried CreateRestApi (its first answer lost) made two: the
    oldest; the others, which no stage serves yet, are deleted."""
    ours = [
        api for api in project.aws.paginate(
            "apigateway", "get_rest_apis", "items", resource=f"REST API {project.api_name}"
        )
        if api.get("name") == project.api_name
        and (api.get("tags") or {}).get(TAG_APP) == project.app
    ]
    if len(ours) < 2:
        return created
    ours.sort(key=lambda api: str(api.get("createdDate", "")))
    for extra in ours[1:]:
        stages = project.aws.call(
            "apigateway", "get_stages", resource=f"REST API {extra['id']}",
            restApiId=extra["id"],
        )
        if stages.get("item"):
            continue
        project.aws.call(
            "apigateway", "delete_rest_api", resource=f"REST API {extra['id']}",
            retry=(APIGW_BUSY,), missing=True, restApiId=extra["id"],
        )
    return str(ours[0]["id"])


# The calls of apply_definition: the definition, then its digest as a tag.
DEFINITION_CALLS: list[Call] = [call("apigateway.PutRestApi"), call("apigateway.TagResource")]


def apply_definition(project: Project, api_id: str, definition: Definition) -> None:
    """Replace the API's resources and methods with the definition, and record its digest.

    The digest is only ever written here, after the definition: where the tag cannot be
    written (moto) `definition_digest` stays None and deploy re-applies every time, rather
    than trusting a digest that no longer describes the API.
    """
    _put_definition(project, api_id, definition)
    tag_api(project, api_id, {TAG_DEFINITION: definition.sha256})


def _put_definition(project: Project, api_id: str, definition: Definition) -> None:
    project.aws.call(
        "apigateway", "put_rest_api", resource=f"REST API {api_id}", retry=(APIGW_BUSY,),
        restApiId=api_id, mode="overwrite", failOnWarnings=False, body=definition.body,
    )


def tag_api(project: Project, api_id: str, tags: dict[str, str]) -> None:
    # moto only tags stages: in process it answers NotFoundException for a REST API ARN, as
    # a server a bare 404 (no route). On AWS either answer means the API is gone, which the
    # next read shows anyway.
    project.aws.call(
        "apigateway", "tag_resource", resource=f"REST API {api_id}",
        ignore=(*APIGW_MISSING, "404"),
        resourceArn=api_arn(project, api_id), tags=tags,
    )


def create_deployment(project: Project, api_id: str, env: str, description: str) -> str:
    """A deployment of the API as it is now; no stage serves it until `point_stage`."""
    created = project.aws.call(
        "apigateway", "create_deployment", resource=f"REST API {api_id} (for {env})",
        retry=(APIGW_BUSY,), restApiId=api_id, description=description,
    )
    return str(created["id"])


def first_deployment(project: Project, api_id: str) -> str:
    """The deployment every stage created in this run starts on (a stage needs one): of the
    "no release yet" definition, so no environment serves before its first deploy or
    promote. The API keeps that definition (and its digest) until the next deploy applies
    the app's; stages already serving keep their own deployments (snapshots)."""
    key = f"first_deployment:{api_id}"
    if key not in project.facts:
        apply_definition(project, api_id, no_release_definition(project))
        project.facts[key] = create_deployment(project, api_id, "new stages", NO_RELEASE)
    return str(project.facts[key])


def point_stage(project: Project, api_id: str, env: str, deployment_id: str) -> None:
    project.aws.call(
        "apigateway", "update_stage", resource=f"stage {env} of REST API {api_id}",
        retry=(APIGW_BUSY,), restApiId=api_id, stageName=env,
        patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment_id}],
    )


# -- plan -------------------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    # list(): other kinds are planned beside this one and may add facts meanwhile.
    for key in [k for k in list(project.facts) if k.startswith("first_deployment:")]:
        del project.facts[key]  # new stages start on a deployment of the API as it is now
    envs = list(project.config.environments)
    # Side by side: the API and the permissions (which need no API id), then the API's
    # own change and the stages. Errors are raised in the order of the plan.
    got_api, *permissions = parallel.settled(
        # Its id and tags as listed: the digest matters here only to tell an API whose
        # definition never went in, which its (missing) methods tell as well.
        lambda: find_api(project, digest=False),
        *(lambda env=env: statement(project, env) for env in envs),
    )
    api = got_api.value()
    if api is not None:
        project.facts["rest_api_id"] = api["id"]
    api_change, *stages = parallel.together(
        lambda: _plan_api(project, api),
        *(lambda env=env: stage(project, str(api["id"]), env) if api is not None else None
          for env in envs),
    )
    changes = [api_change]
    first = True
    for env, have in zip(envs, stages, strict=True):
        changes.append(_plan_stage(project, api, env, first=first, found=have))
        first = first and changes[-1].action != "create"
    for env, got in zip(envs, permissions, strict=True):
        changes.append(_plan_permission(project, api, env, found=got.value()))
    return changes


def _merged_tags(have: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    # Tags sdeliver does not set are the user's: keep them, add ours.
    return {**have, **want}


def _has_methods(project: Project, api_id: str) -> bool:
    return any(
        resource.get("resourceMethods")
        for resource in project.aws.paginate(
            "apigateway", "get_resources", "items", resource=f"REST API {api_id}",
            restApiId=api_id,
        )
    )


def _plan_api(project: Project, api: dict[str, Any] | None) -> Change:
    name = project.api_name
    if api is None:
        definition = build_definition(project)  # here, so a bad file fails the plan

        def create(p: Project) -> None:
            create_api(p, definition)

        fields = [
            FieldChange("endpoint", None, ENDPOINT),
            FieldChange("definition", None, definition.sha256),
            FieldChange("tags", None, project.tags()),
        ]
        calls = [
            call("apigateway.CreateRestApi"),
            call("apigateway.DeleteRestApi", each="extra API a retried create made"),
            *DEFINITION_CALLS,
        ]
        return Change(KIND_API, name, "create", fields, calls, create)
    api_id = str(api["id"])
    have_tags = {k: v for k, v in (api.get("tags") or {}).items() if k != TAG_DEFINITION}
    want_tags = _merged_tags(have_tags, project.tags())
    have_endpoint = ((api.get("endpointConfiguration") or {}).get("types") or [None])[0]
    fields = []
    if have_endpoint != ENDPOINT:
        fields.append(FieldChange("endpoint", have_endpoint, ENDPOINT))
    if want_tags != have_tags:
        fields.append(FieldChange("tags", have_tags, want_tags))
    missing: Definition | None = None
    if definition_digest(api) is None and not _has_methods(project, api_id):
        # Created, then interrupted before its definition went in: nothing to deploy yet.
        missing = build_definition(project)
        fields.append(FieldChange("definition", None, missing.sha256))
    if not fields:
        return Change(KIND_API, name, "none")
    changing = {f.field for f in fields}

    def update(p: Project) -> None:
        if "endpoint" in changing:
            p.aws.call(
                "apigateway", "update_rest_api", resource=f"REST API {api_id}",
                retry=(APIGW_BUSY,), restApiId=api_id,
                patchOperations=[{"op": "replace", "value": ENDPOINT,
                                  "path": f"/endpointConfiguration/types/{have_endpoint}"}],
            )
        if "tags" in changing:
            tag_api(p, api_id, p.tags())
        if missing is not None:
            apply_definition(p, api_id, missing)

    calls = (
        ([call("apigateway.UpdateRestApi")] if "endpoint" in changing else [])
        + ([call("apigateway.TagResource")] if "tags" in changing else [])
        + (DEFINITION_CALLS if missing is not None else [])
    )
    return Change(KIND_API, name, "update", fields, calls, update)


def _plan_stage(
    project: Project, api: dict[str, Any] | None, env: str, *, first: bool = True,
    found: dict[str, Any] | None,
) -> Change:
    """first: no stage before it in this plan is created (it makes their shared deployment).
    found: the stage as `stage` read it (None: missing, or no API)."""
    name = f"{project.api_name}/{env}"
    want_tags = project.tags(env)
    want_variables = project.stage_variables(env)
    have = found
    if have is None:

        def create(p: Project) -> None:
            api_id = rest_api_id(p)
            params: dict[str, Any] = {
                "restApiId": api_id, "stageName": env, "deploymentId": first_deployment(p, api_id),
                "variables": want_variables, "tags": want_tags,
            }
            res = f"stage {env} of REST API {api_id}"
            # Conflict: our own first attempt made it (its answer was lost; the variables and
            # tags went with it), or another change to the API is in progress: wait that out.
            created = p.aws.call("apigateway", "create_stage", resource=res,
                                 ignore=("ConflictException",), **params)
            if created is None and stage(p, api_id, env) is None:
                p.aws.call("apigateway", "create_stage", resource=res, retry=(APIGW_BUSY,),
                           **params)

        fields = [FieldChange(f"variables.{key}", None, value)
                  for key, value in want_variables.items()]
        fields.append(FieldChange("tags", None, want_tags))
        # The first stage created makes the deployment they start on, of the "no release
        # yet" definition; a conflict (another change to the API in progress) is waited out.
        calls = [*DEFINITION_CALLS, call("apigateway.CreateDeployment")] if first else []
        calls += [call("apigateway.CreateStage"),
                  call("apigateway.CreateStage", when="the first met a change in progress")]
        return Change(KIND_STAGE, name, "create", fields, calls, create)
    api_id = str(api["id"]) if api is not None else ""
    # The stage carries exactly the variables sdeliver.yaml declares: one no longer declared
    # (a table removed) is removed, so the function never reads a stale name.
    have_variables = dict(have.get("variables") or {})
    fields = [
        FieldChange(f"variables.{key}", have_variables.get(key), want_variables.get(key))
        for key in sorted(set(have_variables) | set(want_variables), key=_alias_first)
        if have_variables.get(key) != want_variables.get(key)
    ]
    have_tags = dict(have.get("tags") or {})
    merged = _merged_tags(have_tags, want_tags)
    if merged != have_tags:
        fields.append(FieldChange("tags", have_tags, merged))
    if not fields:
        return Change(KIND_STAGE, name, "none")
    changing = {f.field for f in fields}

    patches = [
        {"op": "remove", "path": f"/variables/{f.field.removeprefix('variables.')}"}
        if f.new is None else
        {"op": "replace", "path": f"/variables/{f.field.removeprefix('variables.')}",
         "value": f.new}
        for f in fields if f.field.startswith("variables.")
    ]

    def update(p: Project) -> None:
        if patches:
            p.aws.call(
                "apigateway", "update_stage", resource=f"stage {env} of REST API {api_id}",
                retry=(APIGW_BUSY,), restApiId=api_id, stageName=env, patchOperations=patches,
            )
        if "tags" in changing:
            _tag_stage(p, api_id, env, want_tags)

    calls = ([call("apigateway.UpdateStage")] if patches else []) + (
        [call("apigateway.TagResource")] if "tags" in changing else []
    )
    return Change(KIND_STAGE, name, "update", fields, calls, update)


def _alias_first(key: str) -> tuple[bool, str]:
    return (key != "alias", key)


def _tag_stage(project: Project, api_id: str, env: str, tags: dict[str, str]) -> None:
    project.aws.call(
        "apigateway", "tag_resource", resource=f"stage {env} of REST API {api_id}",
        retry=(APIGW_BUSY,), resourceArn=stage_arn(project, api_id, env), tags=tags,
    )


def _plan_permission(
    project: Project, api: dict[str, Any] | None, env: str, *, found: dict[str, Any] | None
) -> Change:
    """found: the statement as `statement` read it. It is read even without an API: a
    statement left by a deleted API must be replaced, not added again (AddPermission
    refuses a statement id that exists)."""
    fn = project.function_name
    name = f"{fn}:{env}/{project.permission_id(env)}"
    have = found
    have_arn = statement_source_arn(have) if have is not None else None
    want_arn = source_arn(project, str(api["id"]) if api is not None else "<new api>", env)
    if have is not None and have_arn == want_arn:
        return Change(KIND_PERMISSION, name, "none")

    def apply(p: Project) -> None:
        if have is not None:
            remove_permission(p, env)
        want = source_arn(p, rest_api_id(p), env)
        try:
            p.aws.call(
                "lambda", "add_permission", resource=f"function {fn}:{env}",
                retry=(FUNCTION_BUSY,), FunctionName=fn, Qualifier=env,
                StatementId=p.permission_id(env), Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com", SourceArn=want,
            )
        except AwsError as err:
            # A retry of an AddPermission whose answer was lost finds our own statement.
            if err.code != "ResourceConflictException" or not _permits(p, env, want):
                raise

    calls = [*([call("lambda.RemovePermission")] if have is not None else []),
             call("lambda.AddPermission")]
    return Change(
        KIND_PERMISSION, name, "create" if have is None else "update",
        [FieldChange("source_arn", have_arn, want_arn)], calls, apply,
    )


def remove_permission(project: Project, env: str) -> None:
    project.aws.call(
        "lambda", "remove_permission", resource=f"function {project.function_name}:{env}",
        missing=True, retry=(FUNCTION_BUSY,), FunctionName=project.function_name,
        Qualifier=env, StatementId=project.permission_id(env),
    )


# -- prune and destroy ----------------------------------------------------------------------


def prune(project: Project) -> list[Change]:
    """Stages sdeliver made for environments sdeliver.yaml no longer declares."""
    api = find_api(project)
    if api is None:
        return []
    api_id = str(api["id"])
    found = project.aws.call(
        "apigateway", "get_stages", resource=f"REST API {api_id}", restApiId=api_id
    )
    changes = []
    for item in found.get("item") or []:
        env, tags = item["stageName"], item.get("tags") or {}
        if env in project.config.environments or tags.get(TAG_APP) != project.app:
            continue

        def delete(p: Project, env: str = env) -> None:
            p.aws.call(
                "apigateway", "delete_stage", resource=f"stage {env} of REST API {api_id}",
                retry=(APIGW_BUSY,), ignore=APIGW_MISSING, restApiId=api_id, stageName=env,
            )

        changes.append(Change(KIND_STAGE, f"{project.api_name}/{env}", "delete", [],
                              [call("apigateway.DeleteStage")], delete))
    return changes


def destroy(project: Project) -> list[Change]:
    """The permissions, then the API if this app made it (its stages go with it)."""
    changes = []
    for env in project.config.environments:
        if statement(project, env) is None:
            continue

        def revoke(p: Project, env: str = env) -> None:
            remove_permission(p, env)

        name = f"{project.function_name}:{env}/{project.permission_id(env)}"
        changes.append(Change(KIND_PERMISSION, name, "delete", [],
                              [call("lambda.RemovePermission")], revoke))
    api = find_api(project)
    if api is not None and (api.get("tags") or {}).get(TAG_APP) == project.app:
        api_id = str(api["id"])

        def delete(p: Project) -> None:
            # DeleteRestApi is throttled hard (about one call per 30 seconds per account).
            p.aws.call(
                "apigateway", "delete_rest_api", resource=f"REST API {api_id}",
                retry=(APIGW_BUSY,), ignore=APIGW_MISSING, restApiId=api_id,
            )
            p.facts.pop("rest_api_id", None)

        changes.append(Change(KIND_API, project.api_name, "delete", [],
                              [call("apigateway.DeleteRestApi")], delete))
    return changes
