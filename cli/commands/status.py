"""`sdeliver status`: what each environment runs now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..context import state
from ._shared import epilog

EPILOG = epilog("sdeliver status", "sdeliver status --json | jq '.environments.prod.version'")


def status(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
) -> None:
    """Show what each environment runs: Lambda version, release, e2e, URLs.

    Per environment: alias → Lambda version (and canary weights), release id (r-…), the
    source revision it was built from (commit, `-dirty` for changed files), code SHA-256, when
    and by whom deployed, last e2e outcome, API URL, site URL, domain, and a held lock.
    """
    from ..operations.status import environment_status
    from ..operations.status import status as run
    from ..output import emit_json

    g = state(ctx)
    project = g.project()
    if env is not None:
        project.config.env(env)
        document = {
            "app": project.app,
            "region": project.region,
            "environments": {env: environment_status(project, env)},
        }
    else:
        document = run(project)
    if g.json:
        emit_json(document)
    else:
        render(document)


def render(document: dict[str, Any]) -> None:
    from rich.table import Table

    from ..output import data_console as console
    from ..output import escape

    table = Table(
        title=f"{document['app']} ({document['region']})",
        box=None,
        pad_edge=False,
        header_style="bold",
        title_justify="left",
    )
    for column in ("env", "lambda version", "release", "deployed", "e2e", "api", "site"):
        table.add_column(column)
    for name, env in document["environments"].items():
        if env.get("error"):  # in full under the table: a cell would cut the S3 key short
            table.add_row(name, "-", "[red]error (below)[/]", "", "", "", "")
            continue
        weights = ", ".join(f"v{v} {w:.0%}" for v, w in (env.get("weights") or {}).items())
        version = f"{env['version']}" + (f" (+{weights})" if weights else "")
        deployed = f"{env.get('deployed_at', '-')} {env.get('action', '')}".strip()
        table.add_row(
            name,
            version,
            env.get("release") or ("no release yet" if env.get("no_release") else "-"),
            deployed,
            env.get("e2e", "-"),
            env.get("api_url") or "-",
            env.get("site_url") or "-",
        )
    console().print(table)
    for name, env in document["environments"].items():
        if env.get("error"):
            console().print(f"[red]{name}:[/] {escape(env['error'])}")
        if env.get("drift"):
            console().print(
                f"[red]{name} does not serve what the ledger says:[/] "
                + escape("; ".join(env["drift"]))
                + f"\n  {escape(env['repair'])}"
            )
        if "distribution" in env or env.get("distribution_error"):
            console().print(distribution_line(name, env))
        if env.get("locked_by"):
            console().print(f"[yellow]{name} is locked:[/] {env['locked_by']}")
        if env.get("lock_error"):
            console().print(f"[yellow]{name} lock:[/] {escape(env['lock_error'])}")
        for problem in env.get("ledger_problems") or ():
            console().print(f"[yellow]{name} release ledger:[/] {escape(problem)}")
        if env.get("last"):
            last = env["last"]
            console().print(
                f"{name}: last attempt #{last['seq']} {last['action']} "
                f"{last['outcome']} ({last.get('message') or ''})"
            )


def distribution_line(name: str, env: dict[str, Any]) -> str:
    """Whether the environment's CloudFront distribution serves its last change yet."""
    from ..output import escape

    if env.get("distribution_error"):
        return f"[yellow]{name} CloudFront:[/] {escape(env['distribution_error'])}"
    dist = env.get("distribution")
    if dist is None:
        return f"[yellow]{name}: no CloudFront distribution yet[/] (run 'sdeliver reconcile')"
    if dist["status"] == "Deployed":
        return f"{name}: CloudFront distribution {dist['id']} deployed"
    return (f"[yellow]{name}: CloudFront distribution {dist['id']} is still deploying "
            f"({escape(dist['status'])})[/]: https://{escape(env.get('domain') or '')}/ may "
            "not serve its last change yet; 'sdeliver status' again in a few minutes")
