"""The pipeline's actions as declared: each action's name in the pipeline, whether it needs
an environment, how many invocations it may take and where it runs.

The pipeline declaration (resources/pipeline.py), the worker's job parser (actions/job.py)
and the CodeBuild entry point (actions/codebuild.py) read this table; the step each action
runs is bound to it in operations/pipeline_actions.py. A new action is one row here and
one step there (a test checks that every row has its step).

Where an action runs: `aws` actions only call AWS and run in the sdeliver worker function
(Lambda); `commands` actions run the project's own commands (pip, pytest, npm, ...) and
run in sdeliver's CodeBuild project unless `pipeline.build: lambda` says the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import UsageError

Runs = Literal["aws", "commands"]
DEFAULT_MAX_ATTEMPTS = 10  # deploy steps wait for locks and busy functions between attempts


@dataclass(frozen=True)
class PipelineAction:
    action: str  # as in UserParameters / SDELIVER_ACTION
    name: str  # the action's name in the pipeline
    needs_env: bool
    runs: Runs
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def runner(self, build: str) -> Literal["lambda", "codebuild"]:
        """Where this action runs with `pipeline.build: <build>`."""
        return "codebuild" if self.runs == "commands" and build == "codebuild" else "lambda"


TABLE: tuple[PipelineAction, ...] = (
    PipelineAction("dependencies", "Dependencies", needs_env=False, runs="commands"),
    PipelineAction("build-and-package", "BuildAndPackage", needs_env=False, runs="commands"),
    PipelineAction("deploy-app", "DeployApp", needs_env=True, runs="aws"),
    PipelineAction("deploy-api", "DeployAPI", needs_env=True, runs="aws"),
    PipelineAction("deploy-site", "DeploySite", needs_env=True, runs="aws"),
    # e2e is not resumable: a few attempts, not the deploy steps' ten.
    PipelineAction("end-to-end", "EndToEnd", needs_env=True, runs="commands", max_attempts=3),
)
BY_ACTION = {a.action: a for a in TABLE}
ACTIONS = tuple(BY_ACTION)


def get(action: str) -> PipelineAction:
    found = BY_ACTION.get(action)
    if found is None:
        raise UsageError(f"unknown pipeline action {action!r}",
                         hint=f"one of {', '.join(ACTIONS)}")
    return found
