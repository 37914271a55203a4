"""`sdeliver promote test->prod`: the release the source runs, now in the target."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import state
from ..errors import UsageError
from ._shared import epilog, finish_release

EPILOG = epilog(
    "sdeliver promote 'test->prod'          # quote it: > is a shell redirection",
    "sdeliver promote test prod",
    "sdeliver promote --from test --to prod --canary 10 --steps 3 --interval 120",
)


def promote(
    ctx: typer.Context,
    route: Annotated[
        list[str] | None, typer.Argument(help="'SOURCE->TARGET', 'SOURCE:TARGET' or SOURCE TARGET.")
    ] = None,
    source: Annotated[str | None, typer.Option("--from", help="Source environment.")] = None,
    target: Annotated[str | None, typer.Option("--to", help="Target environment.")] = None,
    skip_order: Annotated[
        bool, typer.Option("--skip-order", help="Allow a step that skips the declared order.")
    ] = False,
    canary: Annotated[
        float | None,
        typer.Option(
            "--canary",
            metavar="PERCENT",
            min=0.1,
            max=99.9,
            help="Shift traffic gradually, starting at this percentage.",
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", min=2, max=20, help="Canary steps, 100 % last.")
    ] = 3,
    interval: Annotated[
        float,
        typer.Option("--interval", metavar="SECONDS", min=0, help="Pause between canary steps."),
    ] = 60.0,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Keep the release when e2e fails.")
    ] = False,
    wait: Annotated[
        float | None, typer.Option("--wait", metavar="SECONDS", help="Wait for the target's lock.")
    ] = None,
) -> None:
    """Point the target environment at exactly the release the source runs now.

    Same Lambda version, same API deployment, the site from the release's artifacts with
    the target's config.json, then the target's e2e; on failure, back to the target's
    previous release.
    """
    from ..operations.promote import Canary, parse_route
    from ..operations.promote import promote as run

    g = state(ctx)
    text = None
    if route:
        if len(route) == 2:
            source, target = route
        elif len(route) == 1:
            text = route[0].replace(":", "->") if "->" not in route[0] else route[0]
        else:
            raise UsageError("promote takes one route, e.g. 'test->prod'")
        if text is not None and text.endswith("-"):
            # What a shell leaves of an unquoted test->prod: `>prod` became a redirection.
            raise UsageError(
                f"{text!r} is half a route: the shell read '>' as a redirection "
                "(and may have written a file named after the target)",
                hint=f"quote the route: sdeliver promote '{text}>TARGET'",
            )
    src, dst = parse_route(text, source, target)
    project = g.project()
    plan = Canary(canary, steps, interval) if canary is not None else None
    result = run(
        project,
        src,
        dst,
        skip_order=skip_order,
        canary=plan,
        rollback_on_failure=not no_rollback,
        wait=wait,
    )
    finish_release(g, result)
