"""`sdeliver deploy`: build, publish a version, move the alias, API and site, run e2e."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ._shared import epilog, finish_release

EPILOG = epilog(
    "sdeliver deploy                      # to the first environment (test)",
    "sdeliver deploy --env test --wait 300  # wait up to 5 min for a running command",
    "sdeliver deploy --no-rollback        # keep the release even if e2e fails",
)


def deploy(
    ctx: typer.Context,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Environment (default: the first).")
    ] = None,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Keep the new release when e2e fails.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Deploy (and run e2e) even when nothing changed; compare every site object "
            "with the bucket, repairing files changed behind sdeliver's back.",
        ),
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait", metavar="SECONDS", help="Wait this long for the environment's lock."
        ),
    ] = None,
) -> None:
    """Build a release from this directory and make an environment run it.

    Runs build.commands, packages function.source as a reproducible zip, updates the code
    only when its SHA-256 changed, publishes a version, moves the alias, deploys the API
    stage, publishes the site (config.json last) and runs the environment's e2e command.
    When e2e fails the previous release is put back (unless --no-rollback). Every outcome
    is recorded in the release ledger.
    """
    from ..operations.deploy import deploy as run

    g = state(ctx)
    project = g.project()
    target = env or project.config.first_env
    result = run(project, target, rollback_on_failure=not no_rollback, force=force, wait=wait)
    finish_release(g, result)
