"""The CodeBuild project Dependencies, BuildAndPackage and EndToEnd run in (the default,
`pipeline.build: codebuild`), for commands that need toolchains a Lambda runtime lacks.

A build runs the same operations as the worker function: sdeliver is not on PyPI, so
reconcile uploads this sdeliver as a wheel into the artifact bucket (under the app's
prefix, at a key named after its digest), and the buildspec — inline in the project,
generated here — installs that wheel in a virtual environment (pip fetches its pinned
dependencies) and runs `python -m sdeliver.actions.codebuild`, which picks the step from
SDELIVER_ACTION / SDELIVER_ENV (set by each pipeline action). A new sdeliver means a new
key, so a new buildspec: the project always runs the sdeliver that reconciled it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .. import worker_package
from ..aws import CODEBUILD_ROLE_PROPAGATION
from ..errors import OperationFailed
from ..names import codebuild_name as name
from ..names import codebuild_role_name as role_name
from ..package import EPOCH, archive_file, collect
from ..plan import Change, FieldChange, call
from ..project import TAG_APP, Project
from ..release import CACHE
from . import policies

KIND = "codebuild-project"
DESCRIPTION = "sdeliver pipeline build"
VENV = "/tmp/sdeliver-venv"  # noqa: S108 - inside the build container, which is ours alone
WHEELS = "/tmp/sdeliver-wheel"  # noqa: S108
ENTRY_POINT = "sdeliver.actions.codebuild"
# AWS ignores a location for CODEPIPELINE sources and artifacts; moto insists on one.
PIPELINE_LOCATION = "codepipeline"


def enabled(project: Project) -> bool:
    pipeline = project.config.pipeline
    return pipeline is not None and pipeline.build == "codebuild"


def project_arn(project: Project) -> str:
    return project.arn("codebuild", f"project/{name(project)}")


def log_group(project: Project) -> str:
    return f"/aws/codebuild/{name(project)}"  # where CodeBuild logs by default


# -- the sdeliver wheel -----------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    filename: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _record_hash(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def wheel() -> Wheel:
    """This sdeliver as a pure-Python wheel, reproducibly (the same code, the same bytes),
    requiring the dependency versions it runs with here, as the worker does."""

    try:
        version = metadata.version("sdeliver")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    info = f"sdeliver-{version}.dist-info"
    own = collect(worker_package.sdeliver_root(), exclude=worker_package.SDELIVER_EXCLUDE,
                  key="sdeliver")
    requires = "".join(f"Requires-Dist: {pin}\n" for pin in worker_package.requirements())
    generated = {
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: sdeliver\nVersion: {version}\n"
            f"Requires-Python: >=3.10\n{requires}"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sdeliver\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in own:
            renamed = type(entry)(f"sdeliver/{entry.name}", entry.path, entry.executable,
                                  entry.size)
            archive_file(archive, renamed)
            data = entry.path.read_bytes()
            record.append(f"{renamed.name},{_record_hash(data)},{len(data)}")
        for path, data in generated.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=EPOCH), data)
            record.append(f"{path},{_record_hash(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=EPOCH),
                         "\n".join(record) + "\n")
    return Wheel(f"sdeliver-{version}-py3-none-any.whl", buffer.getvalue())


def wheel_key(project: Project, built: Wheel) -> str:
    return f"{project.prefix}/codebuild/{built.digest[:16]}/{built.filename}"


# -- the project ------------------------------------------------------------------------------


def buildspec(project: Project, key: str) -> str:
    """Install the sdeliver at `key` in a virtual environment of its own (the project's
    build commands keep their Python), run the action, hand the tree on as the output."""
    filename = key.rsplit("/", 1)[1]
    wheel_path = f"{WHEELS}/{filename}"
    commands = {
        "install": [
            f"python3 -m venv {VENV}",
            f"aws s3 cp --only-show-errors s3://{project.artifact_bucket}/{key} {wheel_path}",
            f"{VENV}/bin/python -m pip install --quiet --disable-pip-version-check {wheel_path}",
        ],
        "build": [f"{VENV}/bin/python -m {ENTRY_POINT}"],
    }
    lines = ["version: 0.2", "phases:"]
    for phase, run in commands.items():
        lines += [f"  {phase}:", "    commands:"]
        lines += [f"      - {json.dumps(command)}" for command in run]  # JSON is YAML
    lines += [
        "artifacts:",  # what the next action gets: the whole tree, as the worker uploads it
        "  files:",
        '    - "**/*"',
        '    - ".sdeliver/**/*"',  # the release id BuildAndPackage writes, named: a dotfile
        # The build cache beside it is a second copy of the zips, which no later action reads
        # (the action removes it too; this keeps it out whatever a build command leaves).
        "  exclude-paths:",
        f'    - "{CACHE.as_posix()}/**/*"',
    ]
    return "\n".join(lines) + "\n"


def _environment_type(image: str) -> str:
    return "ARM_CONTAINER" if "aarch64" in image else "LINUX_CONTAINER"


def desired(project: Project, key: str) -> dict[str, Any]:
    """The project as sdeliver declares it, in the shape `comparable` reads it back."""
    assert project.config.pipeline is not None and project.config.pipeline.codebuild
    settings = project.config.pipeline.codebuild
    variables = {"SDELIVER_APP": project.app}
    if project.aws.endpoint_url:  # an emulator: builds talk to it, not to AWS
        variables["SDELIVER_ENDPOINT_URL"] = project.aws.endpoint_url
    return {
        "description": DESCRIPTION,
        "source": {"type": "CODEPIPELINE", "buildspec": buildspec(project, key)},
        "artifacts": {"type": "CODEPIPELINE"},
        "environment": {
            "type": _environment_type(settings.image),
            "image": settings.image,
            "computeType": settings.compute_type,
            "environmentVariables": [
                {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in sorted(variables.items())
            ],
        },
        "serviceRole": policies.role_arn(project, role_name(project)),
        "timeoutInMinutes": settings.timeout,
    }


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    """Only what sdeliver declares (AWS adds defaults: privileged mode, pull credentials…)."""
    source = found.get("source") or {}
    environment = found.get("environment") or {}
    variables = [
        {"name": v.get("name"), "value": v.get("value"), "type": v.get("type") or "PLAINTEXT"}
        for v in environment.get("environmentVariables") or []
    ]
    return {
        "description": found.get("description"),
        "source": {"type": source.get("type"), "buildspec": source.get("buildspec")},
        "artifacts": {"type": (found.get("artifacts") or {}).get("type")},
        "environment": {
            "type": environment.get("type"),
            "image": environment.get("image"),
            "computeType": environment.get("computeType"),
            "environmentVariables": sorted(variables, key=lambda v: str(v["name"])),
        },
        "serviceRole": found.get("serviceRole"),
        "timeoutInMinutes": found.get("timeoutInMinutes"),
    }


def _params(want: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    return {
        **want,
        "source": {**want["source"], "location": PIPELINE_LOCATION},
        "artifacts": {**want["artifacts"], "location": PIPELINE_LOCATION},
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
    }


# -- reading ----------------------------------------------------------------------------------


def read(project: Project) -> dict[str, Any] | None:
    found = project.aws.call(
        "codebuild", "batch_get_projects", resource=f"CodeBuild project {name(project)}",
        names=[name(project)],
    )
    projects = [p for p in found.get("projects") or [] if p.get("name") == name(project)]
    return dict(projects[0]) if projects else None


def tags_of(found: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in found.get("tags") or []}


def uploaded(project: Project, key: str) -> bool:
    # Listed, not HEADed: before init makes the bucket, a HEAD may answer 403, not 404.
    found = project.aws.call(
        "s3", "list_objects_v2", resource="the sdeliver wheel", missing=True,
        Bucket=project.artifact_bucket, Prefix=key, MaxKeys=1,
    )
    return any(item.get("Key") == key for item in (found or {}).get("Contents") or [])


# -- planning ---------------------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    if not enabled(project):
        return []
    built = wheel()
    key = wheel_key(project, built)
    want = desired(project, key)
    have = read(project)
    upload = not uploaded(project, key)
    wheel_field = FieldChange("sdeliver wheel", None, f"s3://{project.artifact_bucket}/{key}")
    if have is None:
        fields = [FieldChange(k, None, v) for k, v in want.items()]
        fields += [*([wheel_field] if upload else []), FieldChange("tags", None, project.tags())]
        calls = ([call("s3.PutObject")] if upload else []) + [
            call("codebuild.CreateProject"),
            call("codebuild.UpdateProject", when="the create's answer was lost: ours, adopted"),
        ]

        def create(p: Project) -> None:
            if upload:
                _upload(p, key, built)
            _write(p, "create_project", want, p.tags())

        return [Change(KIND, name(project), "create", fields, calls, create)]
    tags = tags_of(have)
    owner = tags.get(TAG_APP)
    if owner not in (None, project.app):
        raise OperationFailed(
            f"CodeBuild project {name(project)} belongs to sdeliver app {owner!r}",
            hint="rename this app (app: in sdeliver.yaml names the project)",
        )
    actual = comparable(have)
    fields = [FieldChange(k, actual[k], v) for k, v in want.items() if actual[k] != v]
    if upload:
        fields.append(wheel_field)
    merged = {**tags, **project.tags()}
    if merged != tags:
        fields.append(FieldChange("tags", tags, merged))
    if not fields:
        return [Change(KIND, name(project), "none")]
    changing = {f.field for f in fields} - {wheel_field.field}
    calls = ([call("s3.PutObject")] if upload else []) + (
        [call("codebuild.UpdateProject")] if changing else []
    )

    def update(p: Project) -> None:
        if upload:
            _upload(p, key, built)
        if changing:
            _write(p, "update_project", want, merged)

    return [Change(KIND, name(project), "update", fields, calls, update)]


def _upload(project: Project, key: str, built: Wheel) -> None:
    project.aws.call(
        "s3", "put_object", resource="the sdeliver wheel", Bucket=project.artifact_bucket,
        Key=key, Body=built.data, ContentType="application/zip",
    )
    project.aws.add_uploaded(len(built.data))


def _write(project: Project, operation: str, want: dict[str, Any], tags: dict[str, str]) -> None:
    done = project.aws.call(
        "codebuild", operation, resource=f"CodeBuild project {name(project)}",
        retry=(CODEBUILD_ROLE_PROPAGATION,),
        # A retry after a lost answer finds the project its first attempt made.
        ignore=("ResourceAlreadyExistsException",) if operation == "create_project" else (),
        name=name(project), **_params(want, tags),
    )
    if done is None:
        _adopt(project, want, tags)


def _adopt(project: Project, want: dict[str, Any], tags: dict[str, str]) -> None:
    have = read(project)
    if have is None or tags_of(have).get(TAG_APP) != project.app:
        raise OperationFailed(
            f"CodeBuild project {name(project)} already exists and was not made by sdeliver "
            f"for {project.app}",
            hint="delete or rename that project, or rename the app (app: in sdeliver.yaml)",
        )
    if comparable(have) != want:
        _write(project, "update_project", want, {**tags_of(have), **tags})


# -- destroying -------------------------------------------------------------------------------


def destroy(project: Project) -> list[Change]:
    if not enabled(project):
        return []
    have = read(project)
    if have is None or tags_of(have).get(TAG_APP) != project.app:
        return []  # never delete what this app did not create

    def apply(p: Project) -> None:
        p.aws.call("codebuild", "delete_project", resource=f"CodeBuild project {name(p)}",
                   missing=True, name=name(p))

    return [Change(KIND, name(project), "delete", [], [call("codebuild.DeleteProject")], apply)]


# -- the role ---------------------------------------------------------------------------------


def role(project: Project) -> policies.Role:
    """What the three steps do: read and write the pipeline's artifacts and sdeliver's state
    (releases, ledger, lease, the wheel); EndToEnd reads the environment's pointers and, when
    its tests fail, puts the alias, the stage and the site back."""
    assert project.config.pipeline is not None and project.config.pipeline.name is not None
    partition = project.aws.partition
    bucket = f"arn:{partition}:s3:::{project.artifact_bucket}"
    # CodePipeline keeps a run's artifacts under the first 20 characters of its name.
    artifacts = f"{bucket}/{project.config.pipeline.name[:20]}/*"
    function = project.function_arn
    apigw = f"arn:{partition}:apigateway:{project.region}::"
    statements: list[dict[str, Any]] = [
        {"Sid": "PipelineArtifacts", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
         "Resource": artifacts},
        {"Sid": "ArtifactBucket", "Effect": "Allow",
         "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"],
         "Resource": bucket},
        {"Sid": "ReleasesLedgerLocks", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{bucket}/{project.prefix}/*"},
        {"Sid": "Alias", "Effect": "Allow",
         "Action": ["lambda:GetAlias", "lambda:UpdateAlias"],
         "Resource": [function, f"{function}:*"]},
        {"Sid": "Api", "Effect": "Allow",
         "Action": ["apigateway:GET", "apigateway:PATCH"],
         "Resource": [f"{apigw}/restapis", f"{apigw}/restapis/*", f"{apigw}/tags/*"]},
    ]
    statements += policies.site_statements(project)
    return policies.Role(
        name=role_name(project),
        service="codebuild.amazonaws.com",
        policies={
            policies.LOGS_POLICY: policies.log_group_policy(project, log_group(project)),
            "sdeliver-build": {"Version": "2012-10-17", "Statement": statements},
        },
    )
