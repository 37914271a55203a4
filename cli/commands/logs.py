"""`sdeliver logs`: what an environment's function printed (CloudWatch Logs, or locally
the gateway's request log)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ..context import state
from ._shared import epilog

if TYPE_CHECKING:
    from ..config import Config
    from ..context import Globals
    from ..operations.logs import LogLine

EPILOG = epilog(
    "sdeliver logs --env test                  # the last 10 minutes",
    "sdeliver logs --env prod --since 2h --follow",
    "sdeliver --local logs --env test          # the local gateway's request log",
    "sdeliver logs --env test --json | jq '.lines[].message'",
)


def logs(
    ctx: typer.Context,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Environment (default: the first).")
    ] = None,
    since: Annotated[
        str, typer.Option(help="How far back: 30s, 10m, 2h, 1d.")
    ] = "10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends).")
    ] = False,
) -> None:
    """Print what the environment's function logged, oldest first.

    On AWS: the function's CloudWatch Logs (/aws/lambda/FUNCTION), only the log streams of
    the Lambda versions the environment's alias points to. With --local (or at a `local
    serve`): the gateway's log, .sdeliver/gateway.log — each request (method, path,
    status, ms), the handler's output and its exceptions.
    """
    from ..errors import UsageError
    from ..operations import logs as run
    from ..output import emit_json

    g = state(ctx)
    if follow and g.json:
        raise UsageError("--json prints one document: leave out --follow")
    start = time.time() - run.parse_since(since)
    config = g.config()
    target = env or config.first_env
    config.env(target)
    if g.local or _at_local_serve(g, config):
        path = run.gateway_log(config.project_dir)
        if follow:
            _print(run.follow_gateway(path, target, start), versions=False)
            return
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        lines = run.gateway_lines(text, target, start)
        if g.json:
            emit_json({"env": target, "source": str(path), "lines": [x.as_json() for x in lines]})
        else:
            if not path.exists():
                g.reporter.warn(f"no {path} yet: no local emulator has served this project")
            _print(lines, versions=False)
        return
    project = g.project(config)
    if follow:
        _print(run.follow_cloudwatch(project, target, start), versions=True)
        return
    versions = run.alias_versions(project, target)
    lines = run.cloudwatch_lines(project, versions, start)
    if g.json:
        emit_json({
            "env": target, "source": run.log_group(project), "lambda_versions": versions,
            "lines": [x.as_json() for x in lines],
        })
        return
    if not versions:
        g.reporter.warn(f"{target} has no alias yet: nothing deployed, nothing logged")
    _print(lines, versions=True)


def _at_local_serve(g: Globals, config: Config) -> bool:
    from ..context import _is_local_serve

    return bool(g.endpoint_url) and _is_local_serve(str(g.endpoint_url), config)


def _print(lines: Iterable[LogLine], *, versions: bool) -> None:
    # Data on stdout, one line each, flushed: `logs -f | grep` sees each as it comes.
    for line in lines:
        stamp = datetime.fromtimestamp(line.when).strftime("%Y-%m-%d %H:%M:%S")
        tag = f" [{line.version}]" if versions and line.version else ""
        sys.stdout.write(f"{stamp}{tag} {line.message}\n")
        sys.stdout.flush()
