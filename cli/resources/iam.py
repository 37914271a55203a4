"""IAM roles sdeliver creates: the function's execution role, and the pipeline's roles
(CodePipeline's, the worker function's, and the CodeBuild project's with `build: codebuild`).

Each role is described by a `Role` (name, the service that assumes it, inline policies)
and every role goes through the same plan: trust policy, inline policies and tags are
compared with what IAM holds. Policies are least privilege: named actions on this app's
resources, never `*`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from .. import parallel
from ..aws import tags_dict
from ..errors import OperationFailed
from ..plan import Change, FieldChange, call
from ..project import TAG_APP, Project
from . import pipeline
from .policies import LOGS_POLICY, Role, logs_policy

KIND = "iam-role"
PATH = "/sdeliver/"
TABLES_POLICY = "sdeliver-tables"
PERMISSIONS_POLICY = "sdeliver-permissions"
# What a function does with its tables' items; control-plane actions (CreateTable,
# DeleteTable, UpdateTable) are sdeliver's, never the function's. Transactions need no
# action of their own: IAM checks each item's action.
TABLE_ACTIONS = [
    "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
    "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
]
INDEX_ACTIONS = ["dynamodb:Query", "dynamodb:Scan"]
# What reading a table's stream takes (an event source mapping uses the function's role).
# ListStreams cannot be scoped to a table: an app that needs it declares it under
# function.permissions with allow_any_resource.
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
# Inline policies with this prefix are sdeliver's: one no longer declared is removed.
OWN_POLICY_PREFIX = "sdeliver-"


def tables_policy(project: Project) -> dict[str, Any] | None:
    """Items of exactly the declared tables, in every environment (test and prod run the
    same function under one role); their indexes and streams where declared."""
    config = project.config
    if not config.tables:
        return None
    envs = list(config.environments)

    def arns(keys: list[str], suffix: str = "") -> list[str]:
        return [project.table_arn(env, key) + suffix for key in keys for env in envs]

    statements = [
        {"Sid": "TableItems", "Effect": "Allow", "Action": TABLE_ACTIONS,
         "Resource": arns(list(config.tables))},
    ]
    indexed = [key for key, table in config.tables.items() if table.indexes]
    if indexed:
        statements.append({"Sid": "TableIndexes", "Effect": "Allow", "Action": INDEX_ACTIONS,
                           "Resource": arns(indexed, "/index/*")})
    streamed = [key for key, table in config.tables.items() if table.stream]
    if streamed:
        statements.append({"Sid": "TableStreams", "Effect": "Allow", "Action": STREAM_ACTIONS,
                           "Resource": arns(streamed, "/stream/*")})
    return {"Version": "2012-10-17", "Statement": statements}


def permissions_policy(project: Project) -> dict[str, Any] | None:
    """The statements sdeliver.yaml adds under function.permissions (validated there)."""
    declared = project.config.function.permissions
    if not declared:
        return None
    statements = []
    for number, permission in enumerate(declared, start=1):
        statement: dict[str, Any] = {
            "Sid": permission.sid or f"Declared{number}", "Effect": "Allow",
            "Action": list(permission.actions), "Resource": list(permission.resources),
        }
        if permission.condition:
            statement["Condition"] = permission.condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def execution_role(project: Project) -> Role:
    policies = {LOGS_POLICY: logs_policy(project, project.function_name)}
    for name, document in ((TABLES_POLICY, tables_policy(project)),
                           (PERMISSIONS_POLICY, permissions_policy(project))):
        if document is not None:
            policies[name] = document
    return Role(name=project.execution_role, service="lambda.amazonaws.com", policies=policies)


def roles(project: Project) -> list[Role]:
    """Every role this project declares, in the order they are planned."""
    return [execution_role(project), *pipeline.roles(project)]


def _remember(project: Project, name: str, arn: str) -> None:
    project.facts.setdefault("role_arns", {})[name] = arn
    if name == project.execution_role:
        project.facts["role_arn"] = arn


# -- reading ---------------------------------------------------------------------------


def policy_document(document: Any) -> Any:
    """A policy as data: IAM answers URL-encoded JSON text (botocore or moto may decode it)."""
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def read(project: Project, role: Role) -> dict[str, Any] | None:
    """The role, its inline policies and tags: the role and both lists read side by side
    (the lists of a role that does not exist fail, and are then not looked at), then the
    policies side by side."""
    res = f"role {role.name}"

    def listed(operation: str, key: str) -> list[Any]:
        return list(project.aws.paginate("iam", operation, key, resource=res, RoleName=role.name))

    got_role, got_names, got_tags = parallel.settled(
        lambda: project.aws.call("iam", "get_role", resource=res, missing=True,
                                 RoleName=role.name),
        lambda: listed("list_role_policies", "PolicyNames"),
        lambda: listed("list_role_tags", "Tags"),
    )
    found = got_role.value()
    if found is None:
        return None
    names = got_names.value()
    documents = parallel.each(
        lambda name: project.aws.call(
            "iam", "get_role_policy", resource=res, RoleName=role.name, PolicyName=name
        ),
        names,
    )
    policies = {
        name: policy_document(got["PolicyDocument"])
        for name, got in zip(names, documents, strict=True)
    }
    tags = tags_dict(got_tags.value())
    return {
        "arn": found["Role"]["Arn"],
        "path": found["Role"].get("Path", "/"),
        "trust_policy": policy_document(found["Role"]["AssumeRolePolicyDocument"]),
        "policies": policies,
        "tags": tags,
    }


# -- planning --------------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    return parallel.each(lambda role: plan_role(project, role), roles(project))


def plan_role(project: Project, role: Role) -> Change:
    have = read(project, role)
    want_tags = project.tags()
    if have is None:
        return _create(role, want_tags)
    _check_owner(project, role, have)
    _remember(project, role.name, have["arn"])

    fields: list[FieldChange] = []
    if have["trust_policy"] != role.trust_policy():
        fields.append(FieldChange("trust_policy", have["trust_policy"], role.trust_policy()))
    for name, document in role.policies.items():
        if have["policies"].get(name) != document:
            fields.append(FieldChange(f"policy:{name}", have["policies"].get(name), document))
    stale = [
        name for name in have["policies"]
        if name.startswith(OWN_POLICY_PREFIX) and name not in role.policies
    ]
    for name in stale:
        fields.append(FieldChange(f"policy:{name}", have["policies"][name], None))
    # Tags sdeliver does not set are the user's: keep them, add ours.
    merged = {**have["tags"], **want_tags}
    if merged != have["tags"]:
        fields.append(FieldChange("tags", have["tags"], merged))
    if not fields:
        return Change(KIND, role.name, "none")

    changing = {f.field for f in fields}
    calls = []
    if "trust_policy" in changing:
        calls.append(call("iam.UpdateAssumeRolePolicy"))
    calls += [call("iam.PutRolePolicy") for n in role.policies if f"policy:{n}" in changing]
    calls += [call("iam.DeleteRolePolicy") for _ in stale]
    if "tags" in changing:
        calls.append(call("iam.TagRole"))

    def apply(p: Project) -> None:
        res = f"role {role.name}"
        if "trust_policy" in changing:
            p.aws.call(
                "iam", "update_assume_role_policy", resource=res, RoleName=role.name,
                PolicyDocument=json.dumps(role.trust_policy()),
            )
        for name, document in role.policies.items():
            if f"policy:{name}" in changing:
                _put_policy(p, role.name, name, document)
        for name in stale:
            p.aws.call(
                "iam", "delete_role_policy", resource=res, missing=True,
                RoleName=role.name, PolicyName=name,
            )
        if "tags" in changing:
            p.aws.call("iam", "tag_role", resource=res, RoleName=role.name, Tags=_tag_list(merged))
        _remember(p, role.name, have["arn"])

    return Change(KIND, role.name, "update", fields, calls, apply)


def _create(role: Role, tags: dict[str, str]) -> Change:
    fields = [
        FieldChange("path", None, PATH),
        FieldChange("trust_policy", None, role.trust_policy()),
        *(FieldChange(f"policy:{name}", None, doc) for name, doc in role.policies.items()),
        FieldChange("tags", None, tags),
    ]
    calls = [call("iam.CreateRole"), *(call("iam.PutRolePolicy") for _ in role.policies)]

    def apply(p: Project) -> None:
        created = p.aws.call(
            "iam", "create_role", resource=f"role {role.name}", RoleName=role.name, Path=PATH,
            AssumeRolePolicyDocument=json.dumps(role.trust_policy()),
            Description=role.description, Tags=_tag_list(tags),
            # A retry after a lost answer finds the role its first attempt made.
            ignore=("EntityAlreadyExists",),
        ) or _adopt(p, role)
        for name, document in role.policies.items():
            _put_policy(p, role.name, name, document)
        # The role is not assumable everywhere for a few seconds: whoever passes it to a
        # service retries on IAM_PROPAGATION (see function.py).
        _remember(p, role.name, created["Role"]["Arn"])

    return Change(KIND, role.name, "create", fields, calls, apply)


def _adopt(project: Project, role: Role) -> dict[str, Any]:
    """The role that already exists under our name, if it is ours to finish creating."""
    found = project.aws.call("iam", "get_role", resource=f"role {role.name}", RoleName=role.name)
    tags = {t["Key"]: t["Value"] for t in found["Role"].get("Tags") or []}
    if found["Role"].get("Path") != PATH or tags.get(TAG_APP) != project.app:
        raise OperationFailed(
            f"IAM role {role.name} already exists and was not made by sdeliver for "
            f"{project.app}",
            hint="delete or rename that role, or rename the app (app: in sdeliver.yaml)",
        )
    return dict(found)


def _check_owner(project: Project, role: Role, have: dict[str, Any]) -> None:
    owner = have["tags"].get(TAG_APP)
    if owner not in (None, project.app):
        raise OperationFailed(
            f"IAM role {role.name} belongs to sdeliver app {owner!r}",
            hint="rename one of the apps (app: in sdeliver.yaml names the roles)",
        )
    if have["path"] != PATH:
        raise OperationFailed(
            f"IAM role {role.name} exists outside sdeliver's path {PATH} (at {have['path']})",
            hint="delete or rename that role, or rename this app",
        )


def _put_policy(project: Project, role: str, name: str, document: dict[str, Any]) -> None:
    project.aws.call(
        "iam", "put_role_policy", resource=f"role {role}", RoleName=role, PolicyName=name,
        PolicyDocument=json.dumps(document),
    )


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# -- destroying ------------------------------------------------------------------------


def destroy(project: Project) -> list[Change]:
    changes = []
    for role in reversed(roles(project)):
        have = read(project, role)
        if have is None or have["tags"].get(TAG_APP) != project.app:
            continue  # never delete what this app did not create
        attached = [
            item["PolicyArn"]
            for item in project.aws.paginate(
                "iam", "list_attached_role_policies", "AttachedPolicies",
                resource=f"role {role.name}", RoleName=role.name,
            )
        ]
        changes.append(_delete(role, list(have["policies"]), attached))
    return changes


def _delete(role: Role, inline: list[str], attached: list[str]) -> Change:
    calls = [call("iam.DeleteRolePolicy") for _ in inline]
    calls += [call("iam.DetachRolePolicy") for _ in attached]  # else DeleteRole fails
    calls.append(call("iam.DeleteRole"))

    def apply(p: Project) -> None:
        res = f"role {role.name}"
        for name in inline:
            p.aws.call(
                "iam", "delete_role_policy", resource=res, missing=True,
                RoleName=role.name, PolicyName=name,
            )
        for arn in attached:
            p.aws.call(
                "iam", "detach_role_policy", resource=res, missing=True,
                RoleName=role.name, PolicyArn=arn,
            )
        p.aws.call("iam", "delete_role", resource=res, missing=True, RoleName=role.name)
        p.facts.get("role_arns", {}).pop(role.name, None)
        if role.name == p.execution_role:
            p.facts.pop("role_arn", None)

    return Change(KIND, role.name, "delete", [], calls, apply)
