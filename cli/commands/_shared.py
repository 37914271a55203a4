"""What several commands do alike: ask before changing, print a plan."""

from __future__ import annotations

import typer

from ..context import Globals
from ..errors import UsageError
from ..output import interactive

GLOBALS_EPILOG = (
    "Global options (before or after the command): -c/--config, --profile, --region, "
    "--endpoint-url, --json, -v/--verbose, -y/--yes, --local."
)


def epilog(*examples: str) -> str:
    lines = "\n".join(f"  {e}" for e in examples)
    return f"\b\nExamples:\n{lines}\n\n{GLOBALS_EPILOG}"


def confirm(g: Globals, question: str) -> bool:
    if g.yes:
        return True
    if not interactive():
        raise UsageError(f"{question} needs confirmation: pass --yes when not at a terminal")
    return typer.confirm(question, default=False, err=True)
