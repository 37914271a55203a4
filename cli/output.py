"""Everything sdeliver prints: progress on stderr (rich: spinners on a terminal, plain
lines otherwise), tables on stdout (plans here; status and history in their commands) and
one JSON document on stdout for scripts. Operations never print: they report through
`progress.Progress`, which `Reporter` implements."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from .plan import Plan

_console: Console | None = None
_data_console: Console | None = None
_emitted = False  # a JSON document is on stdout: an error must not add a second one
_last_error = ""


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False, soft_wrap=True)
        if not _console.is_terminal:  # plain output for logs and pipes: no 80-column tables
            _console = Console(stderr=True, highlight=False, soft_wrap=True, width=160)
    return _console


def data_console() -> Console:
    """stdout, for data a script may read or grep (the tables of `status` and `history`):
    the same rendering as `console()`, progress and logs staying on stderr."""
    global _data_console
    if _data_console is None:
        from rich.console import Console

        _data_console = Console(highlight=False, soft_wrap=True)
        if not _data_console.is_terminal:
            # A pipe or a file: whole lines, never a URL or an ARN cut with "…" (grep, awk).
            _data_console = Console(highlight=False, soft_wrap=True, width=1000)
    return _data_console


def escape(markup: str) -> str:
    """Text shown as it is, never read as rich markup (rich loads on first output)."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)


def interactive() -> bool:
    return console().is_terminal and sys.stdin.isatty()


class Reporter:
    """A `Progress` for people: steps and details on stderr, spinners for waits."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet

    def step(self, message: str) -> None:
        if not self.quiet:
            console().print(f"[bold]›[/] {escape(message)}")

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            console().print(f"  [dim]{escape(message)}[/]")

    def warn(self, message: str) -> None:
        console().print(f"[yellow]warning:[/] {escape(message)}")

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        if self.quiet:
            yield
            return
        if console().is_terminal:
            with console().status(escape(message)):
                yield
        else:
            console().print(f"  {escape(message)}")
            yield

    def output(self, line: str) -> None:
        # A child process's output (build, e2e): passed through as it is.
        if not self.quiet:
            console().out(line, highlight=False)


def emit_json(document: Any) -> None:
    global _emitted
    _emitted = True
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def reset_emitted() -> None:
    """A new command (tests run several in one process)."""
    global _emitted, _last_error
    _emitted = False
    _last_error = ""


def last_error() -> str:
    """The last error line shown: what a JSON error object says after `typer.Exit(1)`."""
    return _last_error


def emit_json_error(code: int, message: str, hint: str | None = None) -> None:
    """With --json, a failure is one JSON document too (unless one is already out)."""
    if not _emitted:
        emit_json({"error": {"code": code, "message": message, "hint": hint}})


def error(message: str) -> None:
    global _last_error
    _last_error = message
    console().print(f"[red]error:[/] {escape(message)}")


def info(message: str) -> None:
    console().print(escape(message))


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/] {escape(message)}")


# -- a plan, as a table (reconcile, destroy) ---------------------------------------------

ACTION_STYLE = {"create": "green", "update": "yellow", "delete": "red", "none": "dim"}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def plan_table(plan: Plan, *, show_unchanged: bool = False) -> None:
    from rich.table import Table  # rich loads when something is shown, not at start-up

    changes = plan.changes if show_unchanged else plan.pending
    if not changes:
        console().print("No changes: AWS matches sdeliver.yaml.")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("resource")
    table.add_column("action")
    table.add_column("changes")
    table.add_column("AWS calls")
    for change in changes:
        detail = "; ".join(
            f"{f.field}: {_short(f.old)} → {_short(f.new)}"
            if change.action == "update"
            else f.field
            for f in change.fields
        )
        style = ACTION_STYLE[change.action]
        calls = ", ".join(c.short for c in change.calls)
        table.add_row(change.resource, f"[{style}]{change.action}[/]", detail, calls)
    console().print(table)
    if any(c.when or c.each for change in changes for c in change.calls):
        console().print("AWS calls: ? only when needed, * as many times as needed "
                        "(--json says when).")
    counts = plan.counts()
    console().print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['none']} unchanged."
    )
