"""`sdeliver demo`: the whole delivery story on this machine, with no AWS account."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..context import state
from ._shared import epilog

EPILOG = epilog("sdeliver demo", "sdeliver demo --dir /tmp/try --json")


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write the sample app (default: a temp dir)."),
    ] = None,
) -> None:
    """Watch delivery work, with no AWS account and no Docker.

    Scaffolds a sample app and, against an in-process AWS emulator and a local gateway,
    runs init, deploy to test (e2e over real HTTP), promote test->prod, a change and a
    second deploy and promotion, then rollback of prod, showing status and history after
    each step and checking what is served. Exit 0 only if every check held.
    """
    from ..operations.demo import run_demo
    from ..output import emit_json, error, info

    g = state(ctx)
    reporter = g.reporter
    reporter.verbose = True

    def show(kind: str, data: Any) -> None:
        if g.json:
            return
        if kind == "status":
            from .status import render

            render(data)
        else:
            from .history import render_entries

            render_entries(data["env"], data["entries"])

    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    report = run_demo(reporter, directory=directory, show=show)
    passed = sum(c.ok for c in report.checks)
    if g.json:
        emit_json(report.to_json())
    elif report.ok:
        info(f"demo: all {passed} checks held. The sample app is in {report.directory}")
    else:
        error(f"demo: {len(report.checks) - passed} of {len(report.checks)} checks failed")
    if not report.ok:
        raise typer.Exit(1)
