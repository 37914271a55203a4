"""The Lambda function, its published versions and one alias per environment.

Reconcile owns the function's configuration (runtime, handler, memory, timeout,
environment, role, tags). It does not own its code or where the aliases point: those are
releases, moved only by deploy, promote and rollback. Reconcile creates the function from
the current source once, and makes sure every environment has an alias.
"""

from __future__ import annotations

from typing import Any

from .. import parallel
from ..aws import FUNCTION_BUSY, IAM_PROPAGATION, lambda_
from ..errors import OperationFailed
from ..package import Package, package_directory
from ..plan import Change, FieldChange, call
from ..project import TAG_APP, Project
from . import policies

KIND = "lambda-function"
ALIAS_KIND = "lambda-alias"
DESCRIPTION = "managed by sdeliver"
ALIAS_DESCRIPTION = "sdeliver"  # marks the aliases prune may delete
MASK = "***"
CREATED = "created by sdeliver"  # the description of versions reconcile publishes
# Bigger zips cannot go in the request; they go through the artifact bucket.
DIRECT_UPLOAD_LIMIT = 50_000_000

# Field name (as the user writes it in sdeliver.yaml) -> UpdateFunctionConfiguration parameter.
CONFIG_PARAMS = {
    "runtime": "Runtime",
    "handler": "Handler",
    "memory": "MemorySize",
    "timeout": "Timeout",
    "environment": "Environment",
    "role": "Role",
}


# -- reading (also for the release commands) --------------------------------------------


def read_function(project: Project) -> dict[str, Any] | None:
    """$LATEST's configuration (with CodeSha256) and the function's Tags, or None."""
    return read_configuration(project, project.function_name)


# -- a function's configuration (shared with the pipeline worker) -------------------------


def read_configuration(project: Project, name: str) -> dict[str, Any] | None:
    """$LATEST's configuration (with CodeSha256) and the function's Tags, or None."""
    found = lambda_.get_function(project.aws, name)
    if found is None:
        return None
    return {**found["Configuration"], "Tags": found.get("Tags") or {}}


def settings(found: dict[str, Any]) -> dict[str, Any]:
    """The CONFIG_PARAMS settings of a function as AWS reports them, in sdeliver.yaml's names."""
    return {
        "runtime": found.get("Runtime"),
        "handler": found.get("Handler"),
        "memory": found.get("MemorySize"),
        "timeout": found.get("Timeout"),
        "environment": (found.get("Environment") or {}).get("Variables") or {},
        "role": found.get("Role"),
    }


def changed_settings(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return [k for k in CONFIG_PARAMS if want[k] != have[k]]


def update_configuration(
    project: Project, name: str, want: dict[str, Any], changing: list[str]
) -> None:
    """Set the changed settings, then wait until the function is ready for the next call."""
    params: dict[str, Any] = {CONFIG_PARAMS[k]: want[k] for k in changing}
    if "Environment" in params:
        params["Environment"] = {"Variables": want["environment"]}
    project.aws.call(
        "lambda", "update_function_configuration", resource=f"function {name}",
        retry=(FUNCTION_BUSY, IAM_PROPAGATION), FunctionName=name, **params,
    )
    lambda_.wait_updated(project.aws, name)


def tag_function(project: Project, name: str, arn: str, tags: dict[str, str]) -> None:
    project.aws.call("lambda", "tag_resource", resource=f"function {name}", Resource=arn,
                     Tags=tags)


def read_alias(project: Project, env: str) -> dict[str, Any] | None:
    """Name, FunctionVersion, Description, and RoutingConfig / RevisionId when AWS gives them."""
    found = lambda_.get_alias(project.aws, project.function_name, env)
    if found is None:
        return None
    return {k: v for k, v in found.items() if k != "ResponseMetadata"}


def latest_published_version(project: Project) -> str | None:
    versions = [
        item["Version"]
        for item in project.aws.paginate(
            "lambda", "list_versions_by_function", "Versions",
            resource=f"function {project.function_name}", FunctionName=project.function_name,
        )
        if item["Version"] != "$LATEST"
    ]
    return max(versions, key=int) if versions else None


def list_aliases(project: Project) -> list[dict[str, Any]]:
    return list(
        project.aws.paginate(
            "lambda", "list_aliases", "Aliases", resource=f"function {project.function_name}",
            FunctionName=project.function_name,
        )
    )


# -- writing (also for the release commands) --------------------------------------------


def code_params(project: Project, package: Package) -> dict[str, Any]:
    """The `Code` of CreateFunction (and the arguments of UpdateFunctionCode)."""
    if package.size <= DIRECT_UPLOAD_LIMIT:
        return {"ZipFile": package.data}
    bucket = project.artifact_bucket
    key = f"{project.prefix}/packages/{package.sha256_hex}.zip"
    project.aws.call(
        "s3", "put_object", resource=f"s3://{bucket}/{key}", Bucket=bucket, Key=key,
        Body=package.data, ChecksumSHA256=package.sha256_b64,
    )
    project.aws.add_uploaded(package.size)
    return {"S3Bucket": bucket, "S3Key": key}


def update_code(project: Project, package: Package) -> dict[str, Any]:
    """Replace $LATEST's code (and architecture) and wait until it is ready to publish."""
    name = project.function_name
    updated = project.aws.call(
        "lambda", "update_function_code", resource=f"function {name}", retry=(FUNCTION_BUSY,),
        FunctionName=name, Architectures=[project.config.function.architecture],
        Publish=False, **code_params(project, package),
    )
    lambda_.wait_updated(project.aws, name)
    return {k: v for k, v in updated.items() if k != "ResponseMetadata"}


def publish_version(project: Project, *, description: str = "") -> str:
    """Publish $LATEST; returns the version number once that version is active."""
    name = project.function_name
    published = project.aws.call(
        "lambda", "publish_version", resource=f"function {name}", retry=(FUNCTION_BUSY,),
        FunctionName=name, Description=description,
    )
    version = str(published["Version"])
    lambda_.wait_active(project.aws, name, version)
    return version


# -- planning ---------------------------------------------------------------------------


def mask(environment: dict[str, str] | None, secrets: list[str]) -> dict[str, str] | None:
    if environment is None:
        return None
    return {k: MASK if k in secrets else v for k, v in environment.items()}


def desired(project: Project) -> dict[str, Any]:
    return {
        **project.config.function.settings(),
        "role": policies.role_arn(project, project.execution_role),
        "tags": project.tags(),
    }


def actual(found: dict[str, Any]) -> dict[str, Any]:
    return {**settings(found), "tags": found.get("Tags") or {}}


PUBLISH = call("lambda.PublishVersion")


def plan(project: Project) -> list[Change]:
    envs = list(project.config.environments)
    # The function and its aliases side by side; the aliases' answers (or errors) are
    # looked at only when the function exists, as when read after it.
    got, *aliases = parallel.settled(
        lambda: read_function(project),
        *(lambda env=env: read_alias(project, env) for env in envs),
    )
    found = got.value()
    if found is None:
        changes = [_create(project)]
    else:
        _check_owner(project, found)
        changes = [_update(project, found)]
    exists = found is not None
    changes += [
        _alias(project, env, exists=exists, found=alias.value() if exists else None)
        for env, alias in zip(envs, aliases, strict=True)
    ]
    # The first alias created publishes the version the next ones point to as well.
    publishing = [c for c in changes if PUBLISH in c.calls]
    for later in publishing[1:]:
        later.calls.remove(PUBLISH)
    return changes


def _create(project: Project) -> Change:
    fn = project.config.function
    package = package_directory(project.config.resolve(fn.source))
    want = desired(project)
    fields = [
        FieldChange(k, None, mask(v, fn.secrets) if k == "environment" else v)
        for k, v in want.items()
    ]
    fields += [
        FieldChange("architecture", None, fn.architecture),
        FieldChange("code", None, f"sha256:{package.sha256_b64} ({package.files} files)"),
    ]
    calls = [
        call("lambda.CreateFunction"),  # with Publish: version 1 comes with it
        call("lambda.PublishVersion", when="the create's answer was lost before it published"),
    ]
    if package.size > DIRECT_UPLOAD_LIMIT:
        calls.insert(0, call("s3.PutObject"))

    def apply(p: Project) -> None:
        name = p.function_name
        environment = dict(fn.environment)
        created = p.aws.call(
            "lambda", "create_function", resource=f"function {name}",
            # A role created moments ago cannot be assumed by Lambda for a few seconds.
            retry=(IAM_PROPAGATION,),
            FunctionName=name, Runtime=fn.runtime, Handler=fn.handler,
            Role=policies.role_arn(p, p.execution_role), Code=code_params(p, package),
            Description=DESCRIPTION, MemorySize=fn.memory, Timeout=fn.timeout,
            Environment={"Variables": environment}, Architectures=[fn.architecture],
            Tags=want["tags"], Publish=True,
            # A retry after a lost answer finds the function its first attempt made.
            ignore=("ResourceConflictException",),
        )
        if created is None:  # adopted: its first attempt may or may not have published
            created = _adopt(p)
            lambda_.wait_active(p.aws, name)
            version = latest_published_version(p) or publish_version(p, description=CREATED)
        else:
            version = str(created["Version"])
            lambda_.wait_active(p.aws, name, version)
        p.facts["function_arn"] = created["FunctionArn"]
        p.facts["function_version"] = version

    return Change(KIND, project.function_name, "create", fields, calls, apply)


def _adopt(project: Project) -> dict[str, Any]:
    """The function that already exists under our name, if this app made it."""
    found = read_function(project)
    if found is None or (found.get("Tags") or {}).get(TAG_APP) != project.app:
        raise OperationFailed(
            f"function {project.function_name} already exists and was not made by sdeliver "
            f"for {project.app}",
            hint="set function.name in sdeliver.yaml to another name",
        )
    return found


def _update(project: Project, found: dict[str, Any]) -> Change:
    secrets = project.config.function.secrets
    want, have = desired(project), actual(found)
    changing = changed_settings(want, have)
    fields = [
        FieldChange(k, mask(have[k], secrets), mask(want[k], secrets))
        if k == "environment" else FieldChange(k, have[k], want[k])
        for k in changing
    ]
    # Tags sdeliver does not set are the user's: keep them, add ours.
    merged = {**have["tags"], **want["tags"]}
    if merged != have["tags"]:
        fields.append(FieldChange("tags", have["tags"], merged))
    if not fields:
        return Change(KIND, project.function_name, "none")
    calls = ([call("lambda.UpdateFunctionConfiguration")] if changing else []) + (
        [call("lambda.TagResource")] if merged != have["tags"] else []
    )

    def apply(p: Project) -> None:
        name = p.function_name
        if changing:
            update_configuration(p, name, want, changing)
        if merged != have["tags"]:
            tag_function(p, name, found["FunctionArn"], want["tags"])
        p.facts["function_arn"] = found["FunctionArn"]

    return Change(KIND, project.function_name, "update", fields, calls, apply)


def _check_owner(project: Project, found: dict[str, Any]) -> None:
    check_owner(project, found, project.function_name,
                hint="set function.name in sdeliver.yaml to a name of this app")


def check_owner(project: Project, found: dict[str, Any], name: str, *, hint: str) -> None:
    """A function another sdeliver app made is never taken over (untagged ones are adopted)."""
    owner = found["Tags"].get(TAG_APP)
    if owner not in (None, project.app):
        raise OperationFailed(f"Lambda function {name} belongs to sdeliver app {owner!r}",
                              hint=hint)


def _alias(project: Project, env: str, *, exists: bool, found: dict[str, Any] | None) -> Change:
    """found: the alias as read_alias read it (None: missing)."""
    name = f"{project.function_name}:{env}"
    # An existing alias is a release pointer: wherever it points, reconcile leaves it.
    if exists and found is not None:
        return Change(ALIAS_KIND, name, "none")
    version = latest_published_version(project) if exists else None
    fields = [FieldChange("version", None, version or "(newly published)")]
    calls = ([PUBLISH] if version is None and exists else []) + [call("lambda.CreateAlias")]

    def apply(p: Project) -> None:
        target = latest_published_version(p) or publish_version(p, description=CREATED)
        p.aws.call(
            "lambda", "create_alias", resource=f"alias {name}",
            # Already there (another run made it, or our own attempt whose answer was lost):
            # it is a release pointer, leave it. (moto says ConflictException.)
            ignore=("ResourceConflictException", "ConflictException"),
            FunctionName=p.function_name, Name=env, FunctionVersion=target,
            Description=ALIAS_DESCRIPTION,
        )

    return Change(ALIAS_KIND, name, "create", fields, calls, apply)


def prune(project: Project) -> list[Change]:
    """Delete aliases sdeliver made for environments sdeliver.yaml no longer declares."""
    if read_function(project) is None:
        return []
    changes = []
    for alias in list_aliases(project):
        env = alias["Name"]
        if alias.get("Description") != ALIAS_DESCRIPTION or env in project.config.environments:
            continue

        def apply(p: Project, env: str = env) -> None:
            p.aws.call(
                "lambda", "delete_alias", resource=f"alias {p.function_name}:{env}",
                missing=True, FunctionName=p.function_name, Name=env,
            )

        changes.append(
            Change(ALIAS_KIND, f"{project.function_name}:{env}", "delete",
                   [FieldChange("version", alias.get("FunctionVersion"), None)],
                   [call("lambda.DeleteAlias")], apply)
        )
    return changes


# -- destroying -------------------------------------------------------------------------


def destroy(project: Project) -> list[Change]:
    """Delete the function, its versions and aliases: only when this app created it."""
    found = read_function(project)
    if found is None or found["Tags"].get(TAG_APP) != project.app:
        return []

    def apply(p: Project) -> None:
        p.aws.call(
            "lambda", "delete_function", resource=f"function {p.function_name}", missing=True,
            retry=(FUNCTION_BUSY,), FunctionName=p.function_name,
        )
        p.facts.pop("function_arn", None)

    calls = [call("lambda.DeleteFunction")]
    return [Change(KIND, project.function_name, "delete", [], calls, apply)]
