"""Reconcile: read what exists, compare it with sdeliver.yaml, plan, apply.

Resource kinds are planned in dependency order (bucket, roles, function and aliases, API
and stages and permissions, site buckets, DNS, the pipeline's worker and CodeBuild project,
the pipeline); a change that needs a value an earlier
change creates (a role's ARN, a new API's id) finds it in `project.facts` or derives it.
Reconcile never moves a release pointer: it only makes sure the pointers exist.
"""

from __future__ import annotations

from types import ModuleType

from ..plan import Plan
from ..project import Project


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
