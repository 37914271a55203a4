"""`sdeliver pipeline status | start | show | run`: the delivery pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..context import state
from ..output import emit_json, error, info
from ._shared import epilog

app = typer.Typer(
    help="The delivery pipeline: Source → Commit → Acceptance → Production.",
    no_args_is_help=True,
    epilog=epilog(
        "sdeliver pipeline status",
        "sdeliver pipeline start",
        "sdeliver pipeline show --json",
        "sdeliver --local pipeline run",
    ),
)


@app.command(epilog=epilog("sdeliver pipeline status", "sdeliver pipeline status --json"))
def status(ctx: typer.Context) -> None:
    """Each stage and action with its latest status, revision and time.

    With a GitHub source, also the connection's state: PENDING until someone authorises it
    in the AWS console (the link is shown), then AVAILABLE.
    """
    from ..operations.pipeline_aws import status as run

    g = state(ctx)
    document = run(g.project())
    if g.json:
        emit_json(document)
        return
    from rich.table import Table

    from ..output import console

    table = Table(title=f"pipeline {document['pipeline']}", box=None, pad_edge=False,
                  header_style="bold", title_justify="left")
    for column in ("stage", "action", "status", "revision", "time", "message"):
        table.add_column(column)
    for stage in document["stages"]:
        for action in stage["actions"]:
            table.add_row(stage["name"], action["name"], action["status"] or "-",
                          (action["revision"] or "-")[:12], action["time"] or "-",
                          action["message"] or action["summary"] or "")
    console().print(table)
    connection = document.get("connection")
    if connection:
        line = f"GitHub connection: {connection['status']}"
        if connection["link"]:
            line += f" — authorise it in the AWS console: {connection['link']}"
        info(line)


@app.command(epilog=epilog("sdeliver pipeline start", "sdeliver pipeline start --json"))
def start(ctx: typer.Context) -> None:
    """Start the pipeline on the newest source revision."""
    from ..operations.pipeline_aws import pipeline_name
    from ..operations.pipeline_aws import start as run

    g = state(ctx)
    project = g.project()
    execution = run(project)
    if g.json:
        emit_json({"pipeline": pipeline_name(project), "execution": execution})
    else:
        info(f"started pipeline {pipeline_name(project)}: execution {execution}")


@app.command(epilog=epilog("sdeliver pipeline show --json | jq '.stages[].name'"))
def show(ctx: typer.Context) -> None:
    """The pipeline sdeliver would create, as JSON.

    What reconcile compares with the pipeline that exists.
    """
    from ..operations.pipeline_aws import show as run

    emit_json(run(state(ctx).project()))


@app.command(epilog=epilog(
    "sdeliver --local pipeline run --yes", "sdeliver pipeline run --source ../checkout"
))
def run(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="Run on this directory (default: the git checkout's HEAD)."),
    ] = None,
) -> None:
    """Run every stage here, as the pipeline runs them.

    In order, through the same actions the pipeline runs.
    Against the configured AWS account, or the embedded emulator with --local. An Approval
    action asks first (or --yes).
    """
    from ..operations.pipeline_run import run_locally
    from ._shared import confirm

    g = state(ctx)
    project = g.project()
    result = run_locally(
        project,
        source,
        approve=lambda stage: confirm(g, f"Approve the {stage} stage?", declined=None),
    )
    if g.json:
        emit_json(result.to_json())
    else:
        _render(result.to_json())
    if not result.ok:
        raise typer.Exit(1)


def _render(document: dict[str, Any]) -> None:
    for stage in document["stages"]:
        for action in stage["actions"]:
            line = f"{stage['name']} / {action['action']}: {action['summary']}"
            (info if action["ok"] else error)(line)
    if document["ok"]:
        info(f"pipeline run: release {document['release']} went through every stage")
