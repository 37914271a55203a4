"""`sdeliver reconcile`: make AWS match sdeliver.yaml, showing the plan first."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ..errors import DriftFound
from ._shared import confirm, epilog

EPILOG = epilog(
    "sdeliver reconcile --check        # exit 3 when AWS differs from sdeliver.yaml",
    "sdeliver reconcile --yes          # apply without asking",
    "sdeliver reconcile --json --check # the plan as data",
    "sdeliver reconcile --yes --no-wait # CloudFront deploys on; see 'sdeliver status'",
)


def reconcile(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Print the plan, change nothing; exit 3 on drift.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Also delete what sdeliver created and no longer declares."),
    ] = False,
    skip: SkipOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Read what exists, compare it field by field with sdeliver.yaml, print the plan, apply it.

    Never moves a release pointer (alias version, stage deployment, site content).
    """
    g = state(ctx)
    run_reconcile(g, check=check, dry_run=dry_run, prune=prune, skip=skip, wait=not no_wait)


SkipOption = Annotated[
    list[str] | None,
    typer.Option(
        "--skip", envvar="SDELIVER_SKIP", metavar="PART",
        help="Leave out a part the endpoint does not offer: 'pipeline' (CodePipeline, "
        "CodeBuild, the pipeline worker and their roles).",
    ),
]


NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Do not wait for CloudFront distributions to deploy (minutes on AWS); "
        "'sdeliver status' says when they are done. Certificates are still waited for.",
    ),
]


def project_skipping(g, skip: list[str] | None):  # type: ignore[no-untyped-def]
    """The project without the parts --skip names, saying once (stderr) what is left out."""
    from ..operations.reconcile import leave_out
    from ..output import info

    config, left_out = leave_out(g.config(), skip or [])
    for part in left_out:
        info(f"{part}: left out (--skip {part}): not read, created or deleted on this target")
    return g.project(config)


def run_reconcile(g, *, check: bool, dry_run: bool, prune: bool, verb: str = "reconcile",  # type: ignore[no-untyped-def]
                  skip: list[str] | None = None, wait: bool = True) -> None:
    from ..operations import reconcile as op
    from ..output import emit_json, info, plan_table

    project = project_skipping(g, skip)
    plan = op.plan(project, prune=prune)
    if g.json:
        document = {"app": project.app, "region": project.region, **plan.to_json()}
    else:
        plan_table(plan)
    if check or dry_run or plan.converged:
        if g.json:
            emit_json({**document, "applied": False})
        if check and not plan.converged:
            raise DriftFound(f"drift found: {len(plan.pending)} change(s) would be made")
        return
    if not confirm(g, f"Apply these {len(plan.pending)} change(s)?"):
        if g.json:
            emit_json({**document, "applied": False})
        return
    op.apply(project, plan, wait=wait)
    if g.json:
        emit_json({**document, "applied": True})
    else:
        info(f"{verb}: done, {len(plan.pending)} change(s) applied.")
