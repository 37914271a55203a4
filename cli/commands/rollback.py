"""`sdeliver rollback --alias prod`: back to the previous release, exactly."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ..errors import UsageError
from ._shared import epilog, finish_release

EPILOG = epilog(
    "sdeliver rollback --alias prod              # the previous release, as the ledger says",
    "sdeliver rollback --alias prod --to r-1a2b3c4d5e6f",
    "sdeliver rollback --alias prod --to 12      # ledger entry 12 (or a Lambda version)",
    "sdeliver rollback --alias prod --dry-run",
)


def rollback(
    ctx: typer.Context,
    alias: Annotated[
        str | None, typer.Option("--alias", "--env", "-e", help="Environment.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="A release id, ledger entry number or Lambda version."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    e2e: Annotated[
        bool, typer.Option("--e2e", help="Run the environment's e2e afterwards.")
    ] = False,
    wait: Annotated[
        float | None, typer.Option("--wait", metavar="SECONDS", help="Wait for the lock.")
    ] = None,
) -> None:
    """Put an environment back on its previous release (or the one named), exactly.

    Restores the alias, the stage's deployment and the site content (byte for byte, from
    the release's artifacts) as the ledger records them, then appends a rollback entry.
    """
    from ..operations.rollback import plan_rollback
    from ..operations.rollback import rollback as run
    from ..output import emit_json, info

    g = state(ctx)
    project = g.project()
    if alias is None:
        raise UsageError("name the environment: --alias prod")
    if dry_run:
        planned = plan_rollback(project, alias, to)
        if g.json:
            emit_json({**planned.to_json(), "applied": False})
            return
        info(
            f"rollback {alias}: #{planned.current.seq} {planned.current.release} → "
            f"#{planned.target.seq} {planned.target.release} (dry run, nothing changed)"
        )
        for change in planned.changes:
            info(f"  {change['pointer']}: {change['from']} → {change['to']}")
        return
    finish_release(g, run(project, alias, to=to, run_tests=e2e, wait=wait))
