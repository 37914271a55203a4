"""The sdeliver worker: the Lambda function the pipeline's actions invoke.

Unlike the app's function, its code is infrastructure: sdeliver packages itself
(`worker_package.build`) and reconcile replaces the code when the package's SHA-256
differs, so the worker always runs the same operations as the CLI that reconciled it.
"""

from __future__ import annotations

from typing import Any

from .. import worker_package
from ..aws import FUNCTION_BUSY, IAM_PROPAGATION, lambda_
from ..errors import OperationFailed
from ..names import worker_name, worker_role_name
from ..package import Package
from ..plan import Change, FieldChange, call
from ..project import TAG_APP, Project
from . import function, policies

KIND = "pipeline-worker"
ARCHITECTURE = "x86_64"
MEMORY = 1024
TIMEOUT = 900  # the longest a Lambda invocation may run: a build or an e2e run fits
DESCRIPTION = "sdeliver pipeline worker"


def desired(project: Project) -> dict[str, Any]:
    environment = {"SDELIVER_APP": project.app}
    if project.aws.endpoint_url:  # an emulator: the worker talks to it, not to AWS
        environment["SDELIVER_ENDPOINT_URL"] = project.aws.endpoint_url
    return {
        "runtime": worker_package.RUNTIME,
        "handler": worker_package.HANDLER,
        "memory": MEMORY,
        "timeout": TIMEOUT,
        "environment": environment,
        "role": policies.role_arn(project, worker_role_name(project)),
        "architecture": ARCHITECTURE,
    }


def actual(found: dict[str, Any]) -> dict[str, Any]:
    return {
        **function.settings(found),
        "architecture": (found.get("Architectures") or ["x86_64"])[0],
    }


def package() -> Package:
    return worker_package.build(worker_package.RUNTIME, ARCHITECTURE)


def read(project: Project) -> dict[str, Any] | None:
    return function.read_configuration(project, worker_name(project))


def plan(project: Project) -> list[Change]:
    if project.config.pipeline is None:
        return []
    name = worker_name(project)
    want = desired(project)
    code = package()
    found = read(project)
    if found is None:
        fields = [FieldChange(k, None, v) for k, v in want.items()]
        fields.append(FieldChange("code", None, f"sha256:{code.sha256_b64} ({code.files} files)"))
        return [Change(KIND, name, "create", fields, [call("lambda.CreateFunction")],
                       lambda p: _create(p, want, code))]
    function.check_owner(project, found, name,
                         hint="rename this app (app: in sdeliver.yaml names the worker)")
    have = actual(found)
    changing = function.changed_settings(want, have)
    fields = [FieldChange(k, have[k], want[k]) for k in changing]
    new_code = found.get("CodeSha256") != code.sha256_b64 or have["architecture"] != ARCHITECTURE
    if new_code:
        fields.append(FieldChange("code", found.get("CodeSha256"), code.sha256_b64))
    merged = {**found["Tags"], **project.tags()}
    if merged != found["Tags"]:
        fields.append(FieldChange("tags", found["Tags"], merged))
    if not fields:
        return [Change(KIND, name, "none")]
    calls = ([call("lambda.UpdateFunctionConfiguration")] if changing else []) + (
        [call("lambda.UpdateFunctionCode")] if new_code else []
    ) + ([call("lambda.TagResource")] if merged != found["Tags"] else [])

    def apply(p: Project) -> None:
        res = f"function {name}"
        if changing:
            function.update_configuration(p, name, want, changing)
        if new_code:
            p.aws.call("lambda", "update_function_code", resource=res, retry=(FUNCTION_BUSY,),
                       FunctionName=name, ZipFile=code.data, Architectures=[ARCHITECTURE])
            lambda_.wait_updated(p.aws, name)
        if merged != found["Tags"]:
            function.tag_function(p, name, found["FunctionArn"], project.tags())

    return [Change(KIND, name, "update", fields, calls, apply)]


def _create(project: Project, want: dict[str, Any], code: Package) -> None:
    name = worker_name(project)
    project.aws.call(
        "lambda", "create_function", resource=f"function {name}",
        # A role created moments ago cannot be assumed by Lambda for a few seconds.
        retry=(IAM_PROPAGATION,),
        FunctionName=name, Runtime=want["runtime"], Handler=want["handler"],
        Role=policies.role_arn(project, worker_role_name(project)), Code={"ZipFile": code.data},
        Description=DESCRIPTION, MemorySize=want["memory"], Timeout=want["timeout"],
        Environment={"Variables": want["environment"]}, Architectures=[ARCHITECTURE],
        Tags=project.tags(),
        # A retry after a lost answer finds the function its first attempt made: it is ours
        # when it carries this app's tag (the next reconcile compares the rest).
        ignore=("ResourceConflictException",),
    ) or _adopt(project, name)
    lambda_.wait_active(project.aws, name)


def _adopt(project: Project, name: str) -> dict[str, Any]:
    found = lambda_.get_function(project.aws, name, missing=False)
    assert found is not None  # missing=False raises instead
    if (found.get("Tags") or {}).get(TAG_APP) != project.app:
        raise OperationFailed(
            f"function {name} already exists and was not made by sdeliver for {project.app}",
            hint="delete or rename that function, or rename the app (app: in sdeliver.yaml)",
        )
    return dict(found)


def destroy(project: Project) -> list[Change]:
    if project.config.pipeline is None:
        return []
    found = read(project)
    if found is None or found["Tags"].get(TAG_APP) != project.app:
        return []

    def apply(p: Project) -> None:
        p.aws.call("lambda", "delete_function", resource=f"function {worker_name(p)}",
                   missing=True, retry=(FUNCTION_BUSY,), FunctionName=worker_name(p))

    calls = [call("lambda.DeleteFunction")]
    return [Change(KIND, worker_name(project), "delete", [], calls, apply)]


def role(project: Project) -> policies.Role:
    """Exactly what the actions do: the app's release pointers, its state, its site buckets."""
    partition = project.aws.partition
    state = f"arn:{partition}:s3:::{project.artifact_bucket}"
    function = project.function_arn
    apigw = f"arn:{partition}:apigateway:{project.region}::"
    statements: list[dict[str, Any]] = [
        # These two actions have no resource type: "*" is the only resource IAM accepts.
        {"Sid": "JobResults", "Effect": "Allow",
         "Action": ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"],
         "Resource": "*"},
        {"Sid": "ReleasesLedgerLocks", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{state}/{project.prefix}/*"},
        # Also what makes a missing key a 404 (not a 403) for the ledger and the lock.
        {"Sid": "ListState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": state},
        {"Sid": "Function", "Effect": "Allow",
         "Action": ["lambda:GetFunction", "lambda:GetFunctionConfiguration",
                    "lambda:UpdateFunctionCode", "lambda:PublishVersion",
                    "lambda:ListVersionsByFunction", "lambda:GetAlias", "lambda:UpdateAlias"],
         "Resource": [function, f"{function}:*"]},
        # The REST API's id is only known once it exists: its ARNs are the region's /restapis.
        {"Sid": "Api", "Effect": "Allow",
         "Action": ["apigateway:GET", "apigateway:PUT", "apigateway:POST", "apigateway:PATCH"],
         "Resource": [f"{apigw}/restapis", f"{apigw}/restapis/*", f"{apigw}/tags/*"]},
    ]
    statements += policies.site_statements(project)
    return policies.Role(
        name=worker_role_name(project),
        service="lambda.amazonaws.com",
        policies={
            policies.LOGS_POLICY: policies.logs_policy(project, worker_name(project)),
            "sdeliver-worker": {"Version": "2012-10-17", "Statement": statements},
        },
    )
