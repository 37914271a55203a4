"""`sdeliver new NAME`: scaffold a working app (function, API, site, e2e tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ..context import state
from ..errors import UsageError
from ..scaffold import scaffold, template_names, templates
from ._shared import epilog

__all__ = ["EPILOG", "new", "scaffold", "template_names", "templates"]

EPILOG = epilog(
    "sdeliver new shop                        # ./shop: sdeliver.yaml, app/, api/, site/, tests/",
    "cd shop && sdeliver --local init --yes && sdeliver --local deploy --env test",
)


def new(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The app's name: 3..40 of a-z, 0-9 and '-'.")
    ],
    template: Annotated[str, typer.Option(help="The kind of app.")] = "python-api",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write it (default: ./NAME).")
    ] = None,
) -> None:
    """Write a new app that sdeliver can deliver: a Python handler with two routes, an
    OpenAPI file, a static site that reads config.json and calls the API, and end-to-end
    tests that check both through SDELIVER_API_URL, SDELIVER_SITE_URL and SDELIVER_ENV.

    Refuses a directory that exists and is not empty.
    """
    from ..config import load_config
    from ..output import emit_json, info

    g = state(ctx)
    if not re.match(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", name):
        raise UsageError(f"app name {name!r}: use 3..40 characters of a-z, 0-9 and '-'")
    if template not in template_names():
        known = ", ".join(template_names())
        raise UsageError(f"no template {template!r}: choose one of {known}")
    target = directory if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} exists and is not empty: choose another name or --dir")
    written = scaffold(templates().joinpath(template), target, name)
    config = load_config(target / "sdeliver.yaml")  # what we wrote must be what sdeliver accepts
    if g.json:
        emit_json({"app": name, "template": template, "path": str(target), "files": written})
        return
    info(f"wrote {len(written)} files to {target}/ ({template})")
    info("next:")
    info(f"  cd {target}")
    info("  sdeliver --local init --yes")
    info("  sdeliver --local deploy --env test")
    if config.site is not None and config.site.hosting == "cloudfront" and config.dns:
        info(f"on AWS, HTTPS at each environment's domain: first set dns.zone "
             f"({config.dns.zone}) and the domains in {target}/sdeliver.yaml to yours")
