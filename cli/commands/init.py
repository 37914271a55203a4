"""`sdeliver init`: write a starter sdeliver.yaml when there is none, then reconcile."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated

import typer

from ..context import state
from ..errors import UsageError
from ..output import info, interactive
from ._shared import epilog
from .reconcile import NoWaitOption, SkipOption

EPILOG = epilog(
    "sdeliver init                          # provision what sdeliver.yaml declares",
    "sdeliver init --app shop --yes         # write a starter sdeliver.yaml, then provision",
    "sdeliver init --check                  # what init would do; exit 3 if anything",
    "sdeliver init --yes --skip pipeline    # all but the pipeline (LocalStack community)",
)


def starter_config(app: str, region: str) -> str:
    text = resources.files("sdeliver.defaults").joinpath("sdeliver.default.yaml").read_text()
    return Template(text).substitute(app=app, region=region)


def _empty(directory: Path) -> bool:
    """Nothing there but hidden entries (a fresh `git init` is still empty)."""
    return not directory.exists() or all(p.name.startswith(".") for p in directory.iterdir())


def _scaffold(path: Path, app: str, region: str) -> None:
    """An empty directory gets the app `sdeliver new` writes: a starter sdeliver.yaml alone
    would name app/, site/ and tests/ that are not there."""
    from ..scaffold import DEFAULT_TEMPLATE, write_app

    written = write_app(path.parent, app)
    default = path.parent / "sdeliver.yaml"
    text = default.read_text(encoding="utf-8").replace(
        "\nregion: us-east-1\n", f"\nregion: {region}\n", 1)
    default.unlink()
    path.write_text(text, encoding="utf-8")
    info(f"wrote {len(written)} files to {path.parent}/ ({DEFAULT_TEMPLATE}, as 'sdeliver new' "
         f"does; app {app}, region {region})")


def init(
    ctx: typer.Context,
    app: Annotated[str | None, typer.Option(help="App name for a new sdeliver.yaml.")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Show the plan only; exit 3 if not converged.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
    write_only: Annotated[
        bool, typer.Option("--write-only", help="Write sdeliver.yaml and stop (no AWS calls).")
    ] = False,
    skip: SkipOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Provision everything sdeliver.yaml declares (the first reconcile).

    With no sdeliver.yaml, writes a starter one first: from --app and --region, or by
    asking when at a terminal (never with --yes or without a terminal); in an empty
    directory, the whole app `sdeliver new` writes (app/, api/, site/, tests/). Running
    init twice changes nothing the second time.
    """
    from .reconcile import run_reconcile

    g = state(ctx)
    path = g.config_path
    if not path.exists():
        if app is None:
            if g.yes or not interactive():
                raise UsageError(f"{path} does not exist: pass --app NAME to write a starter one")
            app = typer.prompt("App name ([a-z0-9-], 3..40 characters)", err=True)
        if not re.match(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", app or ""):
            raise UsageError(f"--app {app!r}: use 3..40 characters of a-z, 0-9 and '-'")
        region = g.region or "us-east-1"
        if _empty(path.parent):
            _scaffold(path, app, region)
        else:  # the user's own code is here: only the configuration is missing
            path.write_text(starter_config(app, region), encoding="utf-8")
            info(f"wrote {path} (app {app}, region {region})")
    if write_only:
        g.config()  # validate what is there
        return
    run_reconcile(g, check=check, dry_run=dry_run, prune=False, verb="init", skip=skip,
                  wait=not no_wait)
