"""Reconcile: read what exists, compare it with sdeliver.yaml, plan, apply.

Resource kinds are planned in dependency order (bucket, tables, roles, function and aliases,
API and stages and permissions, site buckets, CloudFront (HTTPS hosting), DNS, the
pipeline's worker and CodeBuild project,
the pipeline); a change that needs a value an earlier
change creates (a role's ARN, a new API's id) finds it in `project.facts` or derives it.
Reconcile never moves a release pointer: it only makes sure the pointers exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from .. import parallel
from ..config import Config
from ..errors import UsageError
from ..plan import Change, Plan, execute
from ..project import Project
from ..resources import (
    api,
    artifacts,
    cdn,
    codebuild,
    dns,
    function,
    iam,
    pipeline,
    site,
    source,
    tables,
    worker,
)

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
    return [
        artifacts, tables, iam, function, api, site, cdn, dns, worker, codebuild, source, pipeline
    ]


def waves() -> list[list[ModuleType]]:
    """kinds() in groups planned side by side: a kind whose plan needs a fact an earlier
    kind's plan learns comes in a later group. Planning the function, the worker, the
    CodeBuild project and the pipeline compares their role with the ARN the roles' plan
    found (`iam.role_arn`); CloudFront's reads the API's id and the site buckets' state the
    first group learns; nothing else reads a fact another kind's plan sets."""

    after_roles = [function, cdn, worker, codebuild, source, pipeline]
    first = [kind for kind in kinds() if kind not in after_roles]
    return [first, [kind for kind in kinds() if kind in after_roles]]


def plan(project: Project, *, prune: bool = False) -> Plan:
    """Read what exists, kinds side by side (on AWS each read is a round trip). The plan
    lists the kinds' changes in kinds() order whatever order the answers came in, and the
    first kind in that order that fails fails the plan, as when planned one by one (a later
    group is planned even then: its reads are wasted, never wrong, as planning writes
    nothing and a kind after a failed one is never shown)."""

    def one(kind: ModuleType) -> list[Change]:
        changes = list(kind.plan(project))
        if prune and hasattr(kind, "prune"):
            changes += kind.prune(project)
        return changes

    planned: dict[ModuleType, parallel.Outcome[list[Change]]] = {}
    with project.progress.waiting("reading what exists in AWS"):
        for wave in waves():
            outcomes = parallel.settled(*(lambda kind=kind: one(kind) for kind in wave))
            planned.update(zip(wave, outcomes, strict=True))
    result = Plan()
    for kind in kinds():
        result.extend(planned[kind].value())
    return result


def apply(project: Project, plan: Plan, *, wait: bool = True) -> None:
    """Apply reconcile's or destroy's plan through the one executor, which checks that each
    change makes the AWS write calls the plan showed (see `plan.execute`). wait=False
    (`--no-wait`): not for CloudFront distributions to deploy (cdn.no_wait)."""
    if not wait:
        cdn.no_wait(project)
    execute(project, plan)


def destroy_plan(project: Project, *, purge: bool) -> Plan:
    """Everything of the app, in reverse order; what holds data (the artifact bucket, the
    tables) only with purge: the tables are then listed unchanged, as kept."""

    result = Plan()
    with project.progress.waiting("reading what exists in AWS"):
        for kind in reversed(kinds()):
            if kind is artifacts and not purge:
                continue
            if kind is tables and not purge:
                result.extend(tables.kept(project))
                continue
            result.extend(kind.destroy(project))
    return result
