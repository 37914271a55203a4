"""`sdeliver history`: the release ledger of an environment."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from ..context import state
from ._shared import epilog

EPILOG = epilog("sdeliver history --env prod", "sdeliver history --env prod --limit 5 --json")


def history(
    ctx: typer.Context,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Environment (default: the first).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Newest N entries.")
    ] = None,
) -> None:
    """Every pointer move of an environment, newest first."""
    from ..operations.status import history as run
    from ..output import emit_json

    g = state(ctx)
    project = g.project()
    target = env or project.config.first_env
    found = run(project, target, limit)
    for problem in found["problems"]:
        project.progress.warn(f"{target} release ledger: {problem}")
    if g.json:
        emit_json({"app": project.app, "env": target, **found})
        return
    render_entries(target, found["entries"])


def short_who(arn: str) -> str:
    """The caller's last name part: "ana" of ...:user/ana, "root" of arn:aws:iam::1234:root."""
    return re.split(r"[/:]", arn)[-1] or arn


def render_entries(env: str, entries: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from ..output import data_console as console

    if not entries:
        console().print(f"{env}: no releases yet")
        return
    table = Table(
        title=f"history of {env}",
        box=None,
        pad_edge=False,
        header_style="bold",
        title_justify="left",
    )
    for column in ("#", "when", "action", "outcome", "release", "lambda version", "e2e", "who"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            str(e["seq"]),
            e["when"],
            e["action"],
            e["outcome"],
            e["release"],
            str(e.get("lambda_version") or "-"),
            e["e2e"],
            short_who(e["who"]),
        )
    console().print(table)
