"""`sdeliver local serve`: AWS on this machine (an emulator) and a gateway that runs the app."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from ..context import state
from ._shared import epilog

app = typer.Typer(
    help="The local emulator: AWS on this machine, and a gateway that serves each "
    "environment's API and site.",
    no_args_is_help=True,
)

SERVE_EPILOG = epilog(
    "sdeliver local serve &                       # emulator on :4566, gateway on :4567",
    "export SDELIVER_ENDPOINT_URL=http://127.0.0.1:4566",
    "sdeliver --local init --yes && sdeliver --local deploy --env test",
    "curl http://localhost:4567/test/api/hello    # the test alias's code answers",
)


@app.command(epilog=SERVE_EPILOG)
def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="The emulator's port (AWS endpoint).")] = 4566,
    gateway_port: Annotated[
        int, typer.Option(help="The gateway's port (each environment's API and site).")
    ] = 4567,
    idle_timeout: Annotated[
        float, typer.Option(help="Stop after this many seconds without a request (0: never).")
    ] = 0,
    background: Annotated[
        bool, typer.Option(hidden=True, help="Started by --local: log to files only.")
    ] = False,
) -> None:
    """Run the AWS emulator and the local gateway until interrupted.

    Records itself in .sdeliver/local.json beside sdeliver.yaml, so commands run with
    --local use it. Creates the hosted zone of dns.zone when the config declares one.
    The gateway serves http://localhost:GATEWAY/ENV/api/... (the Lambda version ENV's alias
    points to) and http://127.0.0.1:GATEWAY/ENV/site/... (ENV's site bucket): two origins, as
    on AWS, so a browser's CORS checks apply (see api.cors). With site.hosting cloudfront it
    answers as ENV's distribution, on one origin: http://127.0.0.1:GATEWAY/ENV/... the live
    release's site, http://127.0.0.1:GATEWAY/ENV/api/... the API. It logs each request to stderr
    and to .sdeliver/gateway.log (`sdeliver logs --local`). Without a `local serve`, the
    first --local command starts the same in the background.
    """
    from .. import endpoints
    from ..local import background as bg
    from ..local import emulator

    g = state(ctx)
    config = g.config() if g.config_path.exists() else None  # a broken file stops here (2)
    project_dir = g.config_path.parent
    emulator.check_port(port, "emulator")
    emulator.check_port(gateway_port, "gateway")
    activity = bg.Activity()
    _show_gateway_logs(g.verbose, project_dir, to_stderr=not background, activity=activity)
    # Handlers first: a signal that comes as soon as local.json exists must stop us cleanly.
    stopping = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopping.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    stops: list[Any] = [lambda: _restore_signals(previous), endpoints.use_dummy_credentials()]
    try:
        server = emulator.start_emulator(port, on_request=activity.touch)
        stops.append(server.stop)
        gateway = emulator.start_gateway(
            server.endpoint, emulator.live_config(g.config_path), gateway_port
        )
        stops.append(gateway.stop)
        emulator.ensure_hosted_zone(server.endpoint, config)
        def record() -> None:
            endpoints.write_state(
                project_dir, server.endpoint, gateway.url, background=background,
                idle_timeout=idle_timeout, last_request=round(activity.last, 1),
            )

        record()
        stops.append(lambda: endpoints.remove_state(project_dir))
        if not background:
            _announce(g.json, server.endpoint, gateway.url, config)
        written = {"last": activity.last}

        def tick() -> None:
            # local.json carries the idle clock for `local status`; rewritten when it moves.
            if activity.last - written["last"] >= 1:
                written["last"] = activity.last
                record()

        bg.watch_idle(activity, idle_timeout, stopping, tick)
    finally:
        for stop in reversed(stops):
            stop()


def _announce(as_json: bool, endpoint: str, gateway: str, config: Any) -> None:
    from .. import endpoints
    from ..output import info

    if as_json:
        document = {"endpoint": endpoint, "gateway": gateway}
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        sys.stdout.write(
            f"endpoint: {endpoint}\ngateway: {gateway}\n"
            f"export SDELIVER_ENDPOINT_URL={endpoint}\n"
        )
    sys.stdout.flush()  # a script reading a pipe must see it now, not at exit
    for env in config.environments if config is not None else []:
        api_url, site_url = endpoints.env_urls(gateway, config, env)
        info(f"  {env}: {api_url}  {site_url}")
    info("serving; Ctrl-C to stop")


def _restore_signals(previous: dict[Any, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


GATEWAY_LOG = "gateway.log"
LOG_LIMIT = 10 * 1024 * 1024  # bytes: a larger gateway.log starts again when a server starts


def _show_gateway_logs(
    verbose: bool, project_dir: Any, *, to_stderr: bool, activity: Any
) -> None:
    # The request log and handler output: on stderr (a foreground server), and always in
    # .sdeliver/gateway.log for `sdeliver logs`. Each line counts as activity.
    from pathlib import Path

    logger = logging.getLogger("sdeliver.gateway")
    if to_stderr:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gateway: %(message)s"))
        logger.addHandler(handler)
    path = Path(project_dir) / ".sdeliver" / GATEWAY_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size > LOG_LIMIT:
        path.unlink()
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(to_file)
    logger.addFilter(_Touch(activity))
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


class _Touch(logging.Filter):
    def __init__(self, activity: Any) -> None:
        super().__init__()
        self.activity = activity

    def filter(self, record: logging.LogRecord) -> bool:
        self.activity.touch()
        return True


STATUS_EPILOG = epilog(
    "sdeliver local status          # what runs: endpoint, gateway, pid, idle time",
    "sdeliver local status --json   # the same as one JSON document",
)


@app.command(epilog=STATUS_EPILOG, short_help="What runs: endpoint, gateway, pid, idle time.")
def status(ctx: typer.Context) -> None:
    """Show this project's local emulator: endpoint, gateway, pid, idle time.

    Exit 0 whether one runs or not ("running": false in JSON).
    """
    from ..local.background import describe
    from ..output import emit_json

    g = state(ctx)
    document = describe(g.config_path.parent)
    if g.json:
        emit_json(document)
        return
    if not document["running"]:
        sys.stdout.write("no local emulator runs for this project\n")
        return
    idle = document["idle_seconds"]
    timeout = document["idle_timeout_seconds"]
    lines = [
        f"running: {document['mode']} (pid {document['pid']})",
        f"endpoint: {document['endpoint']}",
        f"gateway: {document['gateway']}",
        f"idle: {idle:.0f} s" if idle is not None else "idle: unknown",
        f"stops after: {timeout:g} s idle" if timeout else "stops after: never (Ctrl-C)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


STOP_EPILOG = epilog(
    "sdeliver local stop            # end this project's emulator (its state goes with it)",
)


@app.command(epilog=STOP_EPILOG, short_help="Stop this project's emulator (and its state).")
def stop(ctx: typer.Context) -> None:
    """Stop this project's local emulator; what it held (every resource) goes with it."""
    from ..local.background import stop_server
    from ..output import emit_json, info

    g = state(ctx)
    stopped = stop_server(g.config_path.parent)
    if g.json:
        emit_json({"stopped": stopped is not None, "pid": (stopped or {}).get("pid")})
    elif stopped is None:
        info("no local emulator runs for this project: nothing to stop")
    else:
        info(f"stopped the local emulator (pid {stopped['pid']})")
