"""The command line: global options, one module per command, exit codes.

Global options may stand before or after the command's name (`sdeliver --json status` and
`sdeliver status --json` both work): `main` moves them in front before typer parses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .commands import config as config_cmd
from .commands import (
    demo,
    deploy,
    destroy,
    history,
    iam_policy,
    init,
    local,
    new,
    pipeline,
    promote,
    reconcile,
    rollback,
    status,
    unlock,
)
from .context import state
from .errors import EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, SdeliverError

HELP = f"""Continuous delivery and safe releases for a serverless web app on AWS.

\b
Examples:
  sdeliver init                   provision what sdeliver.yaml declares
  sdeliver deploy --env test      build, publish, move alias/API/site, e2e
  sdeliver promote 'test->prod'   run in prod the release test runs
  sdeliver rollback --alias prod  back to the previous prod release
  sdeliver reconcile --check      exit 3 if AWS differs from sdeliver.yaml
  sdeliver status --json          one JSON document for scripts

{EXIT_CODES_HELP}
"""

app = typer.Typer(
    name="sdeliver",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as git and aws print it: typer's rich help imports rich's markdown and
    # syntax modules, which cost more than the rest of start-up together.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sdeliver {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The configuration file.", show_default=True)
    ] = Path("sdeliver.yaml"),
    profile: Annotated[str | None, typer.Option(help="AWS profile to use.")] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: from the config).")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="AWS endpoint (an emulator). Env: SDELIVER_ENDPOINT_URL."),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout, nothing else there.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail on stderr.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer yes; never prompt.")] = False,
    local: Annotated[
        bool, typer.Option("--local", help="Use the local emulator instead of AWS.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    g = state(ctx)
    g.config_path = config
    g.profile = profile
    g.region = region
    g.endpoint_url = endpoint_url or os.environ.get("SDELIVER_ENDPOINT_URL") or None
    g.json = json_
    g.verbose = verbose
    g.yes = yes
    g.local = local
    ctx.call_on_close(g.close)


app.add_typer(config_cmd.app, name="config")
app.command(epilog=init.EPILOG)(init.init)
app.command(epilog=reconcile.EPILOG)(reconcile.reconcile)
app.command(epilog=destroy.EPILOG)(destroy.destroy)
app.command(epilog=deploy.EPILOG)(deploy.deploy)
app.command(epilog=promote.EPILOG)(promote.promote)
app.command(epilog=rollback.EPILOG)(rollback.rollback)
app.command(epilog=status.EPILOG)(status.status)
app.command(epilog=history.EPILOG)(history.history)
app.command(epilog=unlock.EPILOG)(unlock.unlock)
app.command("iam-policy", epilog=iam_policy.EPILOG)(iam_policy.iam_policy)
app.command(epilog=new.EPILOG)(new.new)
app.command(epilog=demo.EPILOG)(demo.demo)
app.add_typer(local.app, name="local")
app.add_typer(pipeline.app, name="pipeline")

# -- argv ----------------------------------------------------------------------------------

FLAGS = {"--json", "--verbose", "-v", "--yes", "-y", "--local"}
VALUED = {"--config", "-c", "--profile", "--region", "--endpoint-url"}


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options found after the command name to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in FLAGS or (name in VALUED and "=" in arg and name.startswith("--")):
            front.append(arg)
        elif arg in VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _click_exception(err: Exception) -> int | None:
    """The exit code of typer's (or click's) own exceptions after showing them, else None."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if "Exit" in names:
        return int(getattr(err, "exit_code", 0) or 0)
    if "Abort" in names:
        from .output import error

        error("aborted")
        return 130
    if "ClickException" in names and callable(getattr(err, "show", None)):
        err.show()  # type: ignore[attr-defined]
        return EXIT_USAGE if "UsageError" in names else int(getattr(err, "exit_code", 1))
    return None


def main(argv: list[str] | None = None) -> int:
    from .output import error

    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="sdeliver", standalone_mode=False)
    except SdeliverError as err:
        error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as err:  # the last line of defence: never a traceback for a user
        code = _click_exception(err)
        if code is not None:
            return code
        if os.environ.get("SDELIVER_DEBUG"):
            raise
        error(f"internal error: {type(err).__name__}: {err} (set SDELIVER_DEBUG=1 for a traceback)")
        return EXIT_FAILED
    return result if isinstance(result, int) else 0
