"""`pipeline run`: the pipeline's stages on this machine, from a checkout or an archive of
the source, each action run as the worker would run it."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_CONFIG_NAME
from ..errors import OperationFailed, UsageError
from ..project import Project
from ..resources import pipeline as resource
from ..shell import source_revision
from .pipeline import ActionResult, project_at
from .pipeline_actions import run_action
from .pipeline_aws import pipeline_name


@dataclass
class StageRun:
    name: str
    actions: list[ActionResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "actions": [a.to_json() for a in self.actions]}


@dataclass
class PipelineRun:
    source: str
    revision: str | None
    stages: list[StageRun] = field(default_factory=list)
    release: str | None = None

    @property
    def ok(self) -> bool:
        return all(a.ok for s in self.stages for a in s.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "revision": self.revision,
            "release": self.release,
            "stages": [s.to_json() for s in self.stages],
        }


def checkout(project: Project, source: Path | None, target: Path) -> tuple[str, str | None]:
    """Copy the source into `target`: the given directory, else the project's committed
    git checkout (what a push sends), else the project directory as it is."""
    if source is None:
        directory = project.config.project_dir.resolve()
        revision = source_revision(directory, mark_dirty=False)  # git archive HEAD: the commit
        if revision is not None and _git_archive(directory, target):
            return f"git checkout {directory} (HEAD)", revision
    else:
        directory = source.resolve()
        if not (directory / DEFAULT_CONFIG_NAME).is_file():
            raise UsageError(f"--source {source}: no {DEFAULT_CONFIG_NAME} in that directory")
        revision = source_revision(directory)
    shutil.copytree(directory, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    return str(directory), revision


def _git_archive(directory: Path, target: Path) -> bool:
    archive = target.with_name("source.tar")
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"],  # noqa: S607
            cwd=directory, stdout=out, stderr=subprocess.DEVNULL, check=False, timeout=120,
        )
    if done.returncode != 0:
        return False
    if not hasattr(tarfile, "data_filter"):  # Python before 3.10.12 / 3.11.4
        return False
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")  # refuses absolute paths, .., outside links
    return (target / DEFAULT_CONFIG_NAME).is_file()


def run_locally(
    project: Project,
    source: Path | None = None,
    *,
    approve: Callable[[str], bool] = lambda _stage: True,
) -> PipelineRun:
    """Every stage of the declared pipeline, in order, through the same actions."""
    pipeline_name(project)
    with tempfile.TemporaryDirectory(prefix="sdeliver-pipeline-") as tmp:
        tree = Path(tmp) / "source"
        described, revision = checkout(project, source, tree)
        run = PipelineRun(described, revision)
        project.progress.step(f"Source: {described}" + (f" at {revision[:12]}" if revision else ""))
        local = project_at(tree, project.aws, project.progress)
        for stage in resource.declaration(local)["stages"][1:]:
            ran = StageRun(stage["name"])
            run.stages.append(ran)
            project.progress.step(f"Stage {stage['name']}")
            for action in sorted(stage["actions"], key=lambda a: a["runOrder"]):
                if action["actionTypeId"]["category"] == "Approval":
                    if not approve(stage["name"]):
                        raise OperationFailed(f"{stage['name']} was not approved: stopped here")
                    approved = ActionResult(action="approval", env=None, summary="approved")
                    ran.actions.append(approved)
                    continue
                params = resource.user_parameters(action)
                project.progress.step(f"  {action['name']} ({params.get('env') or 'build'})")
                result = run_action(
                    local, params["action"], params.get("env"), revision=revision
                )
                ran.actions.append(result)
                run.release = result.release or run.release
                project.progress.detail(f"  {action['name']}: {result.summary}")
                if not result.ok:
                    return run
        return run
