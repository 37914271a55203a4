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
) -> None:
    """Run the AWS emulator and the local gateway until interrupted.

    Records itself in .sdeliver/local.json beside sdeliver.yaml, so commands run with
    --local use it. Creates the hosted zone of dns.zone when the config declares one.
    The gateway serves http://localhost:GATEWAY/ENV/api/... (the version ENV's alias points
    to) and http://127.0.0.1:GATEWAY/ENV/site/... (ENV's site bucket): two origins, as on
    AWS, so a browser's CORS checks apply (see api.cors).
    """
    from ..local import emulator

    g = state(ctx)
    config = g.config() if g.config_path.exists() else None  # a broken file stops here (2)
    project_dir = g.config_path.parent
    emulator.check_port(port, "emulator")
    emulator.check_port(gateway_port, "gateway")
    _show_gateway_logs(g.verbose)
    # Handlers first: a signal that comes as soon as local.json exists must stop us cleanly.
    stopping = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopping.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    stops: list[Any] = [lambda: _restore_signals(previous), emulator.use_dummy_credentials()]
    try:
        server = emulator.start_emulator(port)
        stops.append(server.stop)
        gateway = emulator.start_gateway(
            server.endpoint, emulator.live_config(g.config_path), gateway_port
        )
        stops.append(gateway.stop)
        emulator.ensure_hosted_zone(server.endpoint, config)
        emulator.write_state(project_dir, server.endpoint, gateway.url)
        stops.append(lambda: emulator.remove_state(project_dir))
        _announce(g.json, server.endpoint, gateway.url, config)
        while not stopping.wait(0.5):
            pass
    finally:
        for stop in reversed(stops):
            stop()


def _announce(as_json: bool, endpoint: str, gateway: str, config: Any) -> None:
    from ..local import emulator
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
        info(f"  {env}: {emulator.api_base(gateway)}/{env}/api/  {gateway}/{env}/site/")
    info("serving; Ctrl-C to stop")


def _restore_signals(previous: dict[Any, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _show_gateway_logs(verbose: bool) -> None:
    # Handler output and failures on stderr; every request too with -v.
    logger = logging.getLogger("sdeliver.gateway")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gateway: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
