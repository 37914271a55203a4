"""The embedded AWS emulator: a moto server on a loopback port, and how commands find it.

`sdeliver local serve` runs one and records it in `.sdeliver/local.json`; `--local` on any
command uses that one, or starts one in the background that later commands reuse (see
local/background.py). Only dummy credentials ever reach the emulator, and the emulator is
only used when asked for.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..aws import Aws
from ..config import load_config
from ..endpoints import HOST, register_gateway, use_dummy_credentials
from ..errors import ConfigError, OperationFailed
from .background import ensure_server
from .edge import install_client, install_server, wsgi
from .gateway import Gateway
from .quirks import _ignore_policy_conditions, allow_mock_integrations, file_any_methods
from .runner import local_runtime_problem

if TYPE_CHECKING:
    from ..config import Config
    from .gateway import Gateway

class PortTaken(OperationFailed):
    """A port the emulator or the gateway should listen on is in use."""


@dataclass
class Emulator:
    endpoint: str
    stop: Callable[[], None]


# -- the server ----------------------------------------------------------------------------


def check_port(port: int, what: str) -> None:
    """Fail in one line when `port` is taken (moto's server thread would hang instead)."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortTaken(
                    f"port {port} on {HOST} is taken: choose another {what} port"
                ) from None
            raise


def start_emulator(port: int = 0, on_request: Callable[[], None] | None = None) -> Emulator:
    """A moto server on HOST:port (0: any free port), in a thread of this process.

    `on_request` is called on each request (a background server's idle clock)."""
    check_port(port, "emulator")
    # moto reads these when its backends are first used: set before any request. sdeliver
    # attaches no AWS-managed policy, and loading moto's copies costs seconds per account.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise OperationFailed(
            "the local emulator is not installed",
            hint="pip install 'sdeliver[local]'",
        ) from None

    _ignore_policy_conditions()
    allow_mock_integrations()
    file_any_methods()
    install_server()  # what CloudFront hosting needs and moto lacks (see edge.py)
    # werkzeug logs every request to stderr unless its logger has a level of its own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _server_class(on_request)(ip_address=HOST, port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    install_client(endpoint)  # the gateway's reads of the live release, in this process
    return Emulator(endpoint=endpoint, stop=server.stop)


def _server_class(on_request: Callable[[], None] | None) -> Any:
    """ThreadedMotoServer with its WSGI app wrapped: the KeyValueStore data plane moto
    lacks in front (edge.wsgi), and `on_request` called per request when given."""
    from moto.moto_server import werkzeug_app
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    # moto 5.2.5 serves with a request handler of its own; earlier versions with werkzeug's.
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    options = {"request_handler": handler} if handler is not None else {}

    class Served(ThreadedMotoServer):
        def _server_entry(self) -> None:
            moto_app = wsgi(DomainDispatcherApplication(create_backend_app))

            def app(environ: Any, start_response: Any) -> Any:
                if on_request is not None:
                    on_request()
                return moto_app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, app, True, **options)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Served


def ensure_hosted_zone(endpoint: str, config: Config | None) -> None:
    """The config's public zone, so DNS changes have somewhere to go (AWS users bring one)."""
    if config is None or config.dns is None:
        return

    aws = Aws(region=config.region, endpoint_url=endpoint)
    zone = config.dns.zone
    found = aws.call("route53", "list_hosted_zones_by_name", DNSName=zone, MaxItems="1")
    for hosted in found.get("HostedZones", []):
        if hosted["Name"].rstrip(".") == zone:
            return
    aws.call(
        "route53", "create_hosted_zone", resource=zone, Name=zone,
        CallerReference=f"sdeliver-local-{zone}",
    )


# -- --local -------------------------------------------------------------------------------


@dataclass
class LocalSession:
    """A command's use of the emulator: its endpoint, and what `close` undoes when the
    command ends (the dummy credentials, the gateway's registration)."""

    endpoint: str
    undo: list[Callable[[], None]]

    def close(self) -> None:
        while self.undo:
            self.undo.pop()()


def local_endpoint(
    config: Config, config_path: Path, announce: Callable[[str], None]
) -> LocalSession:
    """The emulator for a `--local` command: the project's running server (a `local
    serve`, or the background one an earlier `--local` command started), or a new
    background one that outlives this command."""

    why = local_runtime_problem(config.function.runtime)
    if why is not None:
        raise ConfigError(f"{config.path}: function.runtime: {why}",
                          hint="run this app against AWS, or choose a runtime local mode runs")

    session = LocalSession("", [use_dummy_credentials()])
    try:
        running = ensure_server(config.project_dir, config_path, announce=announce)
        session.endpoint, gateway_base = str(running["endpoint"]), str(running["gateway"])
        session.undo.append(register_gateway(session.endpoint, gateway_base))
        install_client(session.endpoint)  # the KeyValueStore data plane without awscrt (edge.py)
        ensure_hosted_zone(session.endpoint, config)
    except BaseException:
        session.close()  # this process's credentials as they were
        raise
    return session


def start_gateway(
    endpoint: str, config: Callable[[], Config | None], port: int = 0
) -> Gateway:
    gateway = Gateway(endpoint=endpoint, config=config, port=port)
    try:
        gateway.start()
    except OSError as err:
        if err.errno in (errno.EADDRINUSE, errno.EACCES):
            message = f"port {port} on {HOST} is taken: choose another gateway port"
            raise PortTaken(message) from None
        raise
    return gateway


def live_config(path: Path) -> Callable[[], Config | None]:
    """The config at `path`, read again when the file changes; None while there is none."""

    seen: dict[str, Any] = {"stamp": None, "config": None}

    def current() -> Config | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != seen["stamp"]:
            try:
                seen["config"] = load_config(path)
            except ConfigError as err:
                logging.getLogger("sdeliver.gateway").error("%s", err)
                seen["config"] = None
            seen["stamp"] = stamp
        config: Config | None = seen["config"]
        return config

    return current


# -- what the release code asks ------------------------------------------------------------


