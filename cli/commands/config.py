"""`sdeliver config validate | show | schema`: the configuration, without touching AWS."""

from __future__ import annotations

import json
import sys

import typer

from ..context import state
from ..output import emit_json, info

app = typer.Typer(
    help="Check and show sdeliver.yaml (no AWS calls).",
    no_args_is_help=True,
    epilog="Examples:  sdeliver config validate ·  sdeliver -c other.yaml config show --json",
)


@app.command()
def validate(ctx: typer.Context) -> None:
    """Validate sdeliver.yaml: exit 0 when valid, 2 with file:line and key when not."""
    g = state(ctx)
    config = g.config()
    if g.json:
        emit_json({"valid": True, "path": str(config.path), "app": config.app})
    else:
        envs = ", ".join(config.environments)
        info(f"{config.path}: valid (app {config.app}, environments {envs})")


@app.command()
def show(ctx: typer.Context) -> None:
    """Print the resolved configuration, every default filled (YAML, or JSON with --json)."""
    import yaml

    g = state(ctx)
    document = g.config().dump()
    if g.json:
        emit_json(document)
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))


@app.command()
def schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of sdeliver.yaml, for editors."""
    from ..config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
