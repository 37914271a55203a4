"""The pipeline's actions as operations, shared by the worker (in Lambda) and `pipeline run`.

The CLI's `deploy` does a release in one call; the pipeline splits it into actions that
CodePipeline runs one by one, each in a fresh invocation with only its input artifact:

- Dependencies       run `build.commands` in the source tree (the output is that tree)
- BuildAndPackage    package function, API definition and site as a release, store it,
                     and write its id into the tree (`.sdeliver/release.json`)
- DeployApp          publish the release's function version and move the alias
- DeployAPI          apply its API definition and deploy the environment's stage
- DeploySite         publish its site (config.json last)
- EndToEnd           run the environment's e2e and write the ledger entry, as deploy does

Each release step holds the environment's lease; a failed step puts the environment back on
its current release and records a "failed" entry, as deploy does. The pieces are the ones
`deploy` uses (`release.build`, `ReleaseStore`, `publish_version`, `deploy_api`, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..config import DEFAULT_CONFIG_NAME, Build, load_config
from ..errors import OperationFailed
from ..openapi import Definition
from ..progress import Progress
from ..project import Project
from ..release import Manifest, Release, ReleaseStore, build, run_build_commands
from ..resources import function
from . import deploy as steps
from .moves import Move, describe
from .pointers import point_stage, publish_site, read_pointers
from .result import ReleaseResult

RELEASE_FILE = ".sdeliver/release.json"


class FunctionBusy(OperationFailed):
    """The function is still applying an earlier update: try the step again later."""


@dataclass(kw_only=True)
class ActionResult:
    action: str  # as in UserParameters: deploy-app, ...
    env: str | None
    summary: str
    release: str | None = None
    ok: bool = True
    result: ReleaseResult | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "action": self.action,
            "env": self.env,
            "ok": self.ok,
            "summary": self.summary,
            "release": self.release,
        }
        if self.result is not None:
            doc["result"] = self.result.to_json()
        return doc


def project_at(directory: Path, aws: Aws, progress: Progress) -> Project:
    """The project as declared in a source tree (an artifact)."""
    path = directory / DEFAULT_CONFIG_NAME
    if not path.is_file():
        raise OperationFailed(f"the source has no {DEFAULT_CONFIG_NAME} at its root ({directory})")
    return Project(config=load_config(path), aws=aws, progress=progress)


# -- Commit ------------------------------------------------------------------------------


def dependencies(project: Project) -> ActionResult:
    run_build_commands(project)
    count = len(project.config.build.commands)
    return ActionResult(action="dependencies", env=None, summary=f"ran {count} build command(s)")


def build_and_package(project: Project, *, revision: str | None = None) -> ActionResult:
    """Package and store the release (build.commands ran in Dependencies, not again)."""
    packaging = Project(
        config=project.config.model_copy(update={"build": Build()}),
        aws=project.aws,
        progress=project.progress,
        facts=project.facts,
    )
    built = build(packaging)
    try:
        built.source_revision = revision or built.source_revision
        store = ReleaseStore(project)
        stored = store.store(built)
        marker = project.config.project_dir / RELEASE_FILE
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(built.manifest(), indent=2, sort_keys=True) + "\n")
    finally:
        built.close()
    how = "stored" if stored else "already stored"
    return ActionResult(action="build-and-package", env=None,
                        summary=f"release {built.release_id} {how}", release=built.release_id)


def release_in(project: Project) -> str:
    """The release id BuildAndPackage wrote into the tree."""
    marker = project.config.project_dir / RELEASE_FILE
    try:
        return str(json.loads(marker.read_text())["release"])
    except (OSError, ValueError, KeyError, TypeError):
        raise OperationFailed(
            f"the input artifact has no {RELEASE_FILE}",
            hint="deploy actions take BuildAndPackage's output artifact (BuildOutput)",
        ) from None


# -- Acceptance / Production ---------------------------------------------------------------


def stored_release(project: Project, release_id: str) -> tuple[Release, Manifest]:
    """A stored release as a `Release` the deploy pieces take (no function bytes needed)."""
    store = ReleaseStore(project)
    manifest = store.require(release_id)
    body = store.read(release_id, "openapi.json")
    definition = Definition(json.loads(body), body, hashlib.sha256(body).hexdigest())
    return (
        Release(
            release_id=release_id,
            function_zip=b"",
            code_sha256=manifest["code_sha256"],
            definition=definition,
            site_zip=None,
            site_digest=manifest.get("site_digest"),
            site_config=manifest.get("site_config") or {},
            source_revision=manifest.get("source_revision"),
            workdir=tempfile.TemporaryDirectory(prefix="sdeliver-"),
        ),
        manifest,
    )


@contextlib.contextmanager
def releasing(
    project: Project, env: str, release_id: str, step: str
) -> Iterator[tuple[Release, Manifest, Move]]:
    """A move of the environment toward the release (its steps run in separate jobs, so
    pointers already on this release are the same move going on); on failure the
    environment goes back on its current release and the failed attempt is recorded, as
    `deploy` does."""
    project.config.env(env)
    with Move(project, env, f"pipeline {step}", toward=release_id) as move:
        release, manifest = stored_release(project, release_id)

        def failed(err: BaseException) -> None:
            if isinstance(err, FunctionBusy):
                return  # nothing moved yet: the step runs again later
            current = move.current
            if current is not None:
                steps.restore(project, env, steps.pointers_of(current), current)
            fields = steps.entry_fields(project, release, current)
            steps.record_failure(move, fields, f"{step}: {describe(err)}")

        move.on_failure = failed
        try:
            yield release, manifest, move
        finally:
            release.close()


def deploy_app(project: Project, env: str, release_id: str, *, wait: bool = True) -> ActionResult:
    """Publish the release's function version and point the environment's alias at it.

    wait=False (the worker): when the function is still busy with an earlier update, raise
    FunctionBusy at once instead of spending the invocation waiting.
    """

    with releasing(project, env, release_id, "DeployApp") as (release, _, _ledger):
        if not wait:
            found = function.read_function(project) or {}
            if found.get("LastUpdateStatus") == "InProgress" or found.get("State") == "Pending":
                raise FunctionBusy(f"function {project.function_name} is still being updated")
        version = steps.publish_version(project, release, ReleaseStore(project))
        before = read_pointers(project, env)
        steps.switch_alias(project, env, version, before.alias_revision)
    return ActionResult(action="deploy-app", env=env, summary=f"alias {env} → version {version}",
                        release=release_id)


def deploy_api(project: Project, env: str, release_id: str) -> ActionResult:
    with releasing(project, env, release_id, "DeployAPI") as (release, _, _ledger):
        deployment = steps.deploy_api(project, env, release)
        point_stage(project, env, deployment)
    return ActionResult(action="deploy-api", env=env,
                        summary=f"stage {env} → deployment {deployment}", release=release_id)


def deploy_site(project: Project, env: str, release_id: str) -> ActionResult:
    with releasing(project, env, release_id, "DeploySite") as (_, manifest, _ledger):
        published = publish_site(project, env, release_id, manifest)
    if published is None:
        return ActionResult(action="deploy-site", env=env, summary="no site to publish",
                            release=release_id)
    summary = f"site {env}: {published.uploaded} uploaded, {published.deleted} deleted"
    return ActionResult(action="deploy-site", env=env, summary=summary, release=release_id)


def end_to_end(
    project: Project, env: str, release_id: str, *, rollback_on_failure: bool = True
) -> ActionResult:
    """Run e2e against what the environment serves and record the release, as deploy does."""
    with releasing(project, env, release_id, "EndToEnd") as (release, manifest, move):
        current = move.current
        now = move.before

        def undo() -> None:
            assert current is not None  # record() undoes only onto a current release
            steps.restore(project, env, steps.pointers_of(current), current)

        result = steps.record(
            project,
            env,
            move,
            steps.entry_fields(project, release, current),
            version=now.version,
            deployment=now.deployment_id,
            label=manifest.get("version") or release_id,
            current=current,
            undo=undo if rollback_on_failure else None,
        )
    return ActionResult(action="end-to-end", env=env, summary=result.summary(),
                        release=release_id, ok=result.ok, result=result)
