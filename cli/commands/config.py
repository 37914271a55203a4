"""`sdeliver config validate | show | schema`: the configuration, without touching AWS."""

from __future__ import annotations

import json
import sys

import typer

from ..context import state
from ..output import emit_json, info, warn
from ._shared import epilog

app = typer.Typer(
    help="Check and show sdeliver.yaml (no AWS calls).",
    no_args_is_help=True,
    epilog=epilog("sdeliver config validate", "sdeliver -c other.yaml config show --json"),
)


@app.command(epilog=epilog(
    "sdeliver config validate", "sdeliver -c staging.yaml config validate --json"
))
def validate(ctx: typer.Context) -> None:
    """Check sdeliver.yaml: exit 0 if valid, 2 if not.

    Besides the document: function.source, site.source and api.openapi exist (the OpenAPI
    file parses as OpenAPI 3 or Swagger 2.0), and AWS still accepts the runtime. Every error
    is listed with file:line and key. Warns (exit 0) when a build or e2e command needs a
    tool the pipeline's runner lacks (pip, pytest, npm, node, ... with build: lambda).
    """
    from ..validate import check_files, runner_warnings

    g = state(ctx)
    config = g.config()
    warnings = [*check_files(config), *runner_warnings(config)]
    if g.json:
        emit_json({"valid": True, "path": str(config.path), "app": config.app,
                   "warnings": warnings})
    else:
        for line in warnings:
            warn(line)
        envs = ", ".join(config.environments)
        info(f"{config.path}: valid (app {config.app}, environments {envs})")


@app.command(epilog=epilog(
    "sdeliver config show", "sdeliver config show --json | jq '.environments.prod'"
))
def show(ctx: typer.Context) -> None:
    """Print the resolved configuration, defaults filled in.

    YAML, or JSON with --json.
    """
    import yaml

    g = state(ctx)
    document = g.config().dump()
    if g.json:
        emit_json(document)
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))


@app.command(epilog=epilog(
    "sdeliver config schema > sdeliver.schema.json   # for an editor's YAML support"
))
def schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of sdeliver.yaml, for editors."""
    from ..config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
