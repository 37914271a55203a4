"""The command line: global options, one module per command, exit codes.

Global options may stand before or after the command's name (`sdeliver --json status` and
`sdeliver status --json` both work): `main` moves them in front before typer parses.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
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
    logs,
    new,
    pipeline,
    promote,
    reconcile,
    rollback,
    status,
    unlock,
)
from .commands._shared import epilog
from .context import state
from .errors import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_USAGE,
    SdeliverError,
    Terminated,
    UsageError,
)

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
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
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
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="A traceback instead of the one-line error. Env: SDELIVER_DEBUG=1."
        ),
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
    g.endpoint_url = _checked_endpoint(
        endpoint_url or os.environ.get("SDELIVER_ENDPOINT_URL") or None,
        "--endpoint-url" if endpoint_url else "SDELIVER_ENDPOINT_URL",
    )
    g.json = json_
    g.verbose = verbose
    g.yes = yes
    g.local = local
    ctx.call_on_close(g.close)


def _checked_endpoint(url: str | None, source: str) -> str | None:
    """The endpoint URL, or a usage error now: botocore would say "internal error:
    ValueError" only at the first call."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"{source} {url!r} is not an http(s) URL",
            hint="for example http://127.0.0.1:4566 (an AWS emulator)",
        )
    return url


# The one-line summaries `sdeliver -h` lists (click would cut the docstrings' first
# paragraphs with "..." at 80 columns): each at most 55 characters.
SUMMARIES = {
    "init": "Provision what sdeliver.yaml declares (first reconcile).",
    "reconcile": "Make AWS match sdeliver.yaml; print the plan first.",
    "destroy": "Delete the app's resources (the ledger with --purge).",
    "deploy": "Build a release and make an environment run it.",
    "promote": "Run in one environment the release another runs.",
    "rollback": "Put an environment back on its previous release.",
    "status": "What each environment runs: Lambda version, release.",
    "history": "Every pointer move of an environment, newest first.",
    "logs": "What an environment's function logged (--follow).",
    "unlock": "Show an environment's lease; with --force, remove it.",
    "iam-policy": "The least-privilege IAM policy to run sdeliver.",
    "new": "Scaffold an app: handler, OpenAPI, site, e2e tests.",
    "demo": "Watch delivery work, with no AWS account and no Docker.",
    "config": "Check and show sdeliver.yaml (no AWS calls).",
    "local": "AWS on this machine, and a gateway that runs the app.",
    "pipeline": "The pipeline: Source → Commit → Acceptance → Production.",
}


def _command(module) -> None:  # type: ignore[no-untyped-def]
    name = module.__name__.rsplit(".", 1)[-1]
    app.command(epilog=module.EPILOG, short_help=SUMMARIES[name])(getattr(module, name))


app.add_typer(config_cmd.app, name="config", short_help=SUMMARIES["config"])
for _module in (init, reconcile, destroy, deploy, promote, rollback, status, history, logs,
                unlock, new, demo):
    _command(_module)
app.command("iam-policy", epilog=iam_policy.EPILOG, short_help=SUMMARIES["iam-policy"])(
    iam_policy.iam_policy
)
app.add_typer(
    local.app,
    name="local",
    short_help=SUMMARIES["local"],
    epilog=epilog(
        "sdeliver local serve                      # emulator :4566, gateway :4567",
        "sdeliver local serve --port 4600 --gateway-port 4601   # other ports",
        "sdeliver local status                     # the one --local started: idle time",
        "sdeliver local stop                       # end it now (else after 30 min idle)",
    ),
)
app.add_typer(pipeline.app, name="pipeline", short_help=SUMMARIES["pipeline"])

# -- argv ----------------------------------------------------------------------------------

FLAGS = {"--json", "--verbose", "-v", "--yes", "-y", "--local", "--debug"}
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


def _click_exception(err: Exception) -> tuple[int, str] | None:
    """The exit code and message of typer's (or click's) own exceptions after showing
    them, else None."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if "Exit" in names:
        return int(getattr(err, "exit_code", 0) or 0), ""
    if "Abort" in names:
        from .output import error

        error("aborted")
        return 130, "aborted"
    if "ClickException" in names and callable(getattr(err, "show", None)):
        err.show()  # type: ignore[attr-defined]
        message = str(getattr(err, "format_message", lambda: str(err))())
        return (EXIT_USAGE if "UsageError" in names else int(getattr(err, "exit_code", 1))), message
    return None


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def _given(args: list[str], flag: str) -> bool:
    """Whether a global flag is among the (hoisted) arguments, before any `--`."""
    return flag in (args[: args.index("--")] if "--" in args else args)


def main(argv: list[str] | None = None) -> int:
    from .output import emit_json_error, error, last_error, reset_emitted

    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    as_json = _given(args, "--json")
    debug = _given(args, "--debug") or bool(os.environ.get("SDELIVER_DEBUG"))
    reset_emitted()

    def failed(code: int, message: str, hint: str | None = None) -> int:
        # With --json a failure is one JSON document on stdout; the line on stderr stays.
        if as_json and code != 0:
            emit_json_error(code, message, hint)
        return code

    command = typer.main.get_command(app)
    # SIGTERM (a CI job cancelled, `kill`) stops a command the way Ctrl-C does: what it
    # moved is put back and recorded before it exits (143). Only the main thread may ask.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = command.main(args=args, prog_name="sdeliver", standalone_mode=False)
    except SdeliverError as err:
        if debug:
            traceback.print_exc()
        error(str(err))
        return failed(err.exit_code, err.message, err.hint)
    except KeyboardInterrupt as err:
        error("interrupted")
        return failed(143 if isinstance(err, Terminated) else 130, "interrupted")
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as err:  # the last line of defence: never a traceback for a user
        click = _click_exception(err)
        if click is not None:
            code, message = click
            # After typer.Exit(1) the command has said why (or printed its JSON result).
            return failed(code, message or last_error() or "failed")
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(err).__name__}: {err}"
        error(f"{message} (run with --debug for a traceback)")
        return failed(EXIT_FAILED, message, "run with --debug for a traceback")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result if isinstance(result, int) else 0
