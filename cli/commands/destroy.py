"""`sdeliver destroy`: remove everything of the app from AWS."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ._shared import confirm, epilog
from .reconcile import SkipOption, project_skipping

EPILOG = epilog(
    "sdeliver destroy --yes            # everything but the artifact bucket and the tables",
    "sdeliver destroy --yes --purge    # the release ledger, artifacts and tables too",
    "sdeliver destroy --yes --skip pipeline  # where the endpoint has no CodePipeline",
)


def destroy(
    ctx: typer.Context,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the artifact bucket (ledger and "
                           "artifacts) and the app's DynamoDB tables (their items)."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted.")] = False,
    skip: SkipOption = None,
) -> None:
    """Delete every resource of the app; the artifact bucket and tables only with --purge."""
    from ..operations import reconcile as op
    from ..output import emit_json, info, plan_table

    g = state(ctx)
    project = project_skipping(g, skip)
    plan = op.destroy_plan(project, purge=purge)
    if not g.json:
        plan_table(plan)
    if dry_run or plan.converged or not confirm(g, f"Delete {len(plan.pending)} resource(s)?"):
        if g.json:
            emit_json({"app": project.app, **plan.to_json(), "applied": False})
        return
    op.apply(project, plan)
    if g.json:
        emit_json({"app": project.app, **plan.to_json(), "applied": True})
    else:
        info(f"destroy: {len(plan.pending)} resource(s) deleted.")
