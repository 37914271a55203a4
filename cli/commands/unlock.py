"""`sdeliver unlock --env prod --force`: break an environment's lease."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ..errors import UsageError
from ._shared import confirm, epilog

EPILOG = epilog(
    "sdeliver unlock --env prod            # show who holds it",
    "sdeliver unlock --env prod --force --yes",
)


def unlock(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    force: Annotated[bool, typer.Option("--force", help="Break the lease.")] = False,
) -> None:
    """Show who holds an environment's lease; with --force, remove it.

    A lock object that is not a lease (truncated, written by hand) is shown as its first
    bytes, escaped, and --force removes it too."""
    from ..lock import force_unlock, inspect_lock
    from ..output import emit_json, info

    g = state(ctx)
    project = g.project()
    project.config.env(env)
    found = inspect_lock(project, env)
    held = found[0] if found else None
    if held is None:
        if g.json:
            emit_json({"env": env, "locked": False, "removed": None})
        else:
            info(f"{env} is not locked")
        return
    info(f"{env} is locked by {held.describe()}")
    if not force:
        raise UsageError(f"{env} stays locked: pass --force to break the lease")
    if not confirm(g, f"Break the lease on {env}?"):
        return
    removed = force_unlock(project, env, shown=held)
    if g.json:
        emit_json({"env": env, "locked": False, "removed": removed.to_dict() if removed else None})
    else:
        info(f"{env}: lease removed")
