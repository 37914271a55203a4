"""Reconcile: read what exists, compare it with sdeliver.yaml, plan, apply.

Resource kinds are planned in dependency order (bucket, roles, function and aliases, API
and stages and permissions, site buckets, DNS, the pipeline's worker and CodeBuild project,
the pipeline); a change that needs a value an earlier
change creates (a role's ARN, a new API's id) finds it in `project.facts` or derives it.
Reconcile never moves a release pointer: it only makes sure the pointers exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from ..config import Config
from ..errors import UsageError
from ..plan import Plan
from ..project import Project

# Parts of sdeliver.yaml a target can go without (`--skip`, SDELIVER_SKIP): the pipeline is
# CodePipeline, CodeBuild and the worker, which LocalStack's community edition lacks.
SKIPPABLE = ("pipeline",)


def leave_out(config: Config, skip: Sequence[str]) -> tuple[Config, list[str]]:
    """The config as if it did not declare the parts `skip` names, and those it declared.

    Nothing of a part left out is read, created or deleted: not even its IAM roles."""
    parts = [p for part in skip for p in part.replace(",", " ").split()]
    unknown = sorted(set(parts) - set(SKIPPABLE))
    if unknown:
        raise UsageError(
            f"--skip {unknown[0]}: only {', '.join(SKIPPABLE)} can be left out"
        )
    if "pipeline" in parts and config.pipeline is not None:
        return config.model_copy(update={"pipeline": None}), ["pipeline"]
    return config, []


def kinds() -> list[ModuleType]:
    from ..resources import api, artifacts, codebuild, dns, function, iam, pipeline, site, worker

    return [artifacts, iam, function, api, site, dns, worker, codebuild, pipeline]


def plan(project: Project, *, prune: bool = False) -> Plan:
    result = Plan()
    with project.progress.waiting("reading what exists in AWS"):
        for kind in kinds():
            result.extend(kind.plan(project))
            if prune and hasattr(kind, "prune"):
                result.extend(kind.prune(project))
    return result


def apply(project: Project, plan: Plan) -> None:
    for change in plan.pending:
        project.progress.step(f"{change.action} {change.resource}")
        if change.apply is not None:
            change.apply(project)


def destroy_plan(project: Project, *, purge: bool) -> Plan:
    from ..resources import artifacts

    result = Plan()
    with project.progress.waiting("reading what exists in AWS"):
        for kind in reversed(kinds()):
            if kind is artifacts and not purge:
                continue
            result.extend(kind.destroy(project))
    return result
