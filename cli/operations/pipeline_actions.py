"""The step each pipeline action runs (the actions themselves are declared in
pipeline_spec.py), and running one: the worker (in Lambda), the CodeBuild entry point and
`pipeline run` all come here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError
from ..pipeline_spec import ACTIONS
from ..pipeline_spec import get as get
from ..project import Project
from . import pipeline as steps


@dataclass(frozen=True)
class Context:
    """What a step may need besides the project: the environment, the source revision,
    and whether it may wait in this invocation (the worker may not)."""

    env: str | None
    revision: str | None = None
    wait: bool = True


def _env(context: Context) -> str:
    assert context.env is not None  # run() checks needs_env first
    return context.env


Step = Callable[[Project, Context], steps.ActionResult]

STEPS: dict[str, Step] = {
    "dependencies": lambda p, c: steps.dependencies(p),
    "build-and-package": lambda p, c: steps.build_and_package(p, revision=c.revision),
    "deploy-app": lambda p, c: steps.deploy_app(p, _env(c), steps.release_in(p), wait=c.wait),
    "deploy-api": lambda p, c: steps.deploy_api(p, _env(c), steps.release_in(p)),
    "deploy-site": lambda p, c: steps.deploy_site(p, _env(c), steps.release_in(p)),
    "end-to-end": lambda p, c: steps.end_to_end(p, _env(c), steps.release_in(p)),
}
if tuple(STEPS) != ACTIONS:  # pragma: no cover - a row of pipeline_spec without its step
    raise RuntimeError(f"pipeline actions {ACTIONS} and their steps {tuple(STEPS)} differ")


def run(project: Project, action: str, context: Context) -> steps.ActionResult:
    """One action, by its UserParameters name, on the project the input artifact holds."""
    found = get(action)
    if found.needs_env and context.env is None:
        raise UsageError(f"action {action} needs an environment")
    return STEPS[action](project, context)


def run_action(
    project: Project,
    action: str,
    env: str | None,
    *,
    revision: str | None = None,
    wait: bool = True,
) -> steps.ActionResult:
    """One action, as the worker and the CodeBuild entry point name it."""
    return run(project, action, Context(env, revision=revision, wait=wait))
