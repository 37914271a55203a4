"""The pipeline's actions, in one table: what each runs, whether it needs an environment,
how many invocations it may take and where it runs.

The pipeline declaration (resources/pipeline.py), the worker's job parser (actions/job.py),
the CodeBuild entry point (actions/codebuild.py) and `pipeline run` all read this table,
so a new action is one row here and one step in operations/pipeline.py.

Where an action runs: `aws` actions only call AWS and run in the sdeliver worker function
(Lambda); `commands` actions run the project's own commands (pip, pytest, npm, ...) and
run in sdeliver's CodeBuild project unless `pipeline.build: lambda` says the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import UsageError
from ..project import Project
from . import pipeline as steps

Runs = Literal["aws", "commands"]
DEFAULT_MAX_ATTEMPTS = 10  # deploy steps wait for locks and busy functions between attempts


@dataclass(frozen=True)
class Context:
    """What a step may need besides the project: the environment, the source revision,
    and whether it may wait in this invocation (the worker may not)."""

    env: str | None
    revision: str | None = None
    wait: bool = True


@dataclass(frozen=True)
class PipelineAction:
    action: str  # as in UserParameters / SDELIVER_ACTION
    name: str  # the action's name in the pipeline
    needs_env: bool
    runs: Runs
    step: Callable[[Project, Context], steps.ActionResult]
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def runner(self, build: str) -> Literal["lambda", "codebuild"]:
        """Where this action runs with `pipeline.build: <build>`."""
        return "codebuild" if self.runs == "commands" and build == "codebuild" else "lambda"


def _env(context: Context) -> str:
    assert context.env is not None  # run() checks needs_env first
    return context.env


TABLE: tuple[PipelineAction, ...] = (
    PipelineAction("dependencies", "Dependencies", False, "commands",
                   lambda p, c: steps.dependencies(p)),
    PipelineAction("build-and-package", "BuildAndPackage", False, "commands",
                   lambda p, c: steps.build_and_package(p, revision=c.revision)),
    PipelineAction("deploy-app", "DeployApp", True, "aws",
                   lambda p, c: steps.deploy_app(p, _env(c), steps.release_in(p), wait=c.wait)),
    PipelineAction("deploy-api", "DeployAPI", True, "aws",
                   lambda p, c: steps.deploy_api(p, _env(c), steps.release_in(p))),
    PipelineAction("deploy-site", "DeploySite", True, "aws",
                   lambda p, c: steps.deploy_site(p, _env(c), steps.release_in(p))),
    # e2e is not resumable: a few attempts, not the deploy steps' ten.
    PipelineAction("end-to-end", "EndToEnd", True, "commands",
                   lambda p, c: steps.end_to_end(p, _env(c), steps.release_in(p)),
                   max_attempts=3),
)
BY_ACTION = {a.action: a for a in TABLE}
ACTIONS = tuple(BY_ACTION)


def get(action: str) -> PipelineAction:
    found = BY_ACTION.get(action)
    if found is None:
        raise UsageError(f"unknown pipeline action {action!r}",
                         hint=f"one of {', '.join(ACTIONS)}")
    return found


def run(project: Project, action: str, context: Context) -> steps.ActionResult:
    """One action, by its UserParameters name, on the project the input artifact holds."""
    found = get(action)
    if found.needs_env and context.env is None:
        raise UsageError(f"action {action} needs an environment")
    return found.step(project, context)
