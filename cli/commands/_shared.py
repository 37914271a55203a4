"""What several commands do alike: ask before changing, print a plan."""

from __future__ import annotations

import typer

from ..context import Globals
from ..errors import UsageError
from ..output import interactive

GLOBALS_EPILOG = (
    "Global options (before or after the command): -c/--config, --profile, --region, "
    "--endpoint-url, --json, -v/--verbose, -y/--yes, --local, --debug."
)


def epilog(*examples: str) -> str:
    lines = "\n".join(f"  {e}" for e in examples)
    return f"\b\nExamples:\n{lines}\n\n{GLOBALS_EPILOG}"


def confirm(g: Globals, question: str, *, declined: str | None = "Nothing changed.") -> bool:
    """Ask a [y/N] question; a "no" says `declined` (what it left as it was)."""
    if g.yes:
        return True
    if not interactive():
        raise UsageError(f"{question} needs confirmation: pass --yes when not at a terminal")
    if typer.confirm(question, default=False, err=True):
        return True
    if declined:
        from ..output import info

        info(declined)
    return False


def finish_release(g: Globals, result) -> None:  # type: ignore[no-untyped-def]
    """Print a release command's result; exit 1 when it did not end well."""
    from ..output import emit_json, error, info

    if g.json:
        emit_json(result.to_json())
    elif result.ok:
        info(result.summary())
    else:
        error(result.summary())
    if not result.ok:
        raise typer.Exit(1)
