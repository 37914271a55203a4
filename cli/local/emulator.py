"""The embedded AWS emulator: a moto server on a loopback port, and how commands find it.

`sdeliver local serve` runs one and records it in `.sdeliver/local.json`; `--local` on any
command uses that one, or starts one in the background that later commands reuse (see
local/background.py). Only dummy credentials ever reach the emulator, and the emulator is
only used when asked for.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, OperationFailed
from .quirks import file_any_methods

if TYPE_CHECKING:
    from ..config import Config
    from ..context import Globals
    from ..project import Project
    from .gateway import Gateway

HOST = "127.0.0.1"
# The name the gateway's API answers under: the same server, another origin than the site's
# (http://127.0.0.1:<port>), so a browser applies its CORS checks locally as on AWS, where
# the site and execute-api are two origins.
API_HOST = "localhost"
STATE_FILE = Path(".sdeliver") / "local.json"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
# A profile named in the environment would otherwise be looked up (and may not exist).
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# Gateways by emulator endpoint, for the release code of this process to find its URLs.
_gateways: dict[str, str] = {}


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
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise OperationFailed(
            "the local emulator is not installed",
            hint="pip install 'sdeliver[local]'",
        ) from None
    _ignore_policy_conditions()
    allow_mock_integrations()
    file_any_methods()
    # werkzeug logs every request to stderr unless its logger has a level of its own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = (
        ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        if on_request is None
        else _watched_server(on_request)(ip_address=HOST, port=port, verbose=False)
    )
    server.start()
    host, bound = server.get_host_and_port()
    return Emulator(endpoint=f"http://{host}:{bound}", stop=server.stop)


def _watched_server(on_request: Callable[[], None]) -> Any:
    """ThreadedMotoServer with its WSGI app wrapped to call `on_request` per request."""
    from moto.moto_server import werkzeug_app
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    # moto 5.2.5 serves with a request handler of its own; earlier versions with werkzeug's.
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    options = {"request_handler": handler} if handler is not None else {}

    class Watched(ThreadedMotoServer):
        def _server_entry(self) -> None:
            moto_app = DomainDispatcherApplication(create_backend_app)

            def app(environ: Any, start_response: Any) -> Any:
                on_request()
                return moto_app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, app, True, **options)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Watched


def allow_mock_integrations() -> None:
    """Make moto import a MOCK integration without `uri` and `httpMethod`, as AWS does.

    moto's PutRestApi passes both positionally and fails (500) when a mock integration, as
    AWS documents it, has neither. Applied where moto runs in this process (the emulator,
    the in-process mock of the tests); a no-op without moto."""
    try:
        from moto.apigateway.models import APIGatewayBackend
    except ImportError:  # pragma: no cover - moto is installed with sdeliver
        return
    build = APIGatewayBackend._build_integration_args
    if getattr(build, "_sdeliver", False):
        return

    def build_args(self: Any, integration: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = build(self, integration)
        if str(args.get("integration_type") or "").lower() == "mock":
            args["uri"] = args.get("uri") or ""
            args["integration_method"] = args.get("integration_method") or "POST"
        return args

    build_args._sdeliver = True  # type: ignore[attr-defined]
    APIGatewayBackend._build_integration_args = build_args  # type: ignore[method-assign,assignment]


def _ignore_policy_conditions() -> None:
    """Make moto skip bucket-policy statements with a Condition instead of applying them.

    moto evaluates bucket policies without their conditions, so a guard such as "deny
    unless aws:SecureTransport" denies every request to the (plain HTTP, loopback)
    emulator. A statement moto cannot evaluate is left out, as if its condition did not
    hold: loopback stands in for TLS.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, "_sdeliver", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = document.get("Statement") or []
        if isinstance(statements, dict):
            statements = [statements]
        document["Statement"] = [s for s in statements if "Condition" not in s]
        if not document["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)

    get_permission._sdeliver = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def use_dummy_credentials() -> Callable[[], None]:
    """Point this process's AWS credentials at the emulator's; returns the undo."""
    names = (*DUMMY_CREDENTIALS, *PROFILE_VARIABLES)
    saved = {name: os.environ.get(name) for name in names}
    for name in PROFILE_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(DUMMY_CREDENTIALS)

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


def ensure_hosted_zone(endpoint: str, config: Config | None) -> None:
    """The config's public zone, so DNS changes have somewhere to go (AWS users bring one)."""
    if config is None or config.dns is None:
        return
    from ..aws import Aws

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


def answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- .sdeliver/local.json ------------------------------------------------------------------


def state_path(project_dir: Path) -> Path:
    return project_dir / STATE_FILE


def read_state(project_dir: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(state_path(project_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not {"endpoint", "gateway", "pid"} <= set(document):
        return None
    return document


def write_state(project_dir: Path, endpoint: str, gateway: str, **extra: Any) -> Path:
    """Record this process's server; written whole (a reader never sees half of it)."""
    path = state_path(project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"endpoint": endpoint, "gateway": gateway, "pid": os.getpid(), **extra}
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def remove_state(project_dir: Path) -> None:
    path = state_path(project_dir)
    document = read_state(project_dir)
    # Only the server that wrote it removes it: another may have replaced a stale one.
    if document is not None and document.get("pid") == os.getpid():
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when empty: logs stay for `sdeliver logs`


def running_server(project_dir: Path) -> dict[str, Any] | None:
    """The `local serve` recorded in the project directory, if it is alive and answers."""
    document = read_state(project_dir)
    if document is None:
        return None
    pid = document.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid) or not answers(str(document["endpoint"])):
        return None
    return document


# -- --local -------------------------------------------------------------------------------


def register_gateway(endpoint: str, gateway: str) -> Callable[[], None]:
    key = endpoint.rstrip("/")
    _gateways[key] = gateway.rstrip("/")

    def unregister() -> None:
        _gateways.pop(key, None)

    return unregister


def local_endpoint(g: Globals, config: Config) -> str:
    """The emulator for a `--local` command: the project's running server (a `local
    serve`, or the background one an earlier `--local` command started), or a new
    background one that outlives this command."""
    from .background import ensure_server
    from .runner import local_runtime_problem

    why = local_runtime_problem(config.function.runtime)
    if why is not None:
        raise ConfigError(f"{config.path}: function.runtime: {why}",
                          hint="run this app against AWS, or choose a runtime local mode runs")

    g.profile = None
    g._cleanups.append(use_dummy_credentials())
    running = ensure_server(config.project_dir, g.config_path, announce=g.reporter.step)
    endpoint, gateway_base = str(running["endpoint"]), str(running["gateway"])
    g._cleanups.append(register_gateway(endpoint, gateway_base))
    ensure_hosted_zone(endpoint, config)
    return endpoint


def start_gateway(
    endpoint: str, config: Callable[[], Config | None], port: int = 0
) -> Gateway:
    from .gateway import Gateway

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
    from ..config import load_config
    from ..errors import ConfigError

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


def gateway_url(project: Project) -> str | None:
    """The local gateway's base URL when `project` talks to the emulator, else None."""
    fact = project.facts.get("local_gateway")
    if fact:
        return str(fact).rstrip("/")
    endpoint = (project.aws.endpoint_url or "").rstrip("/")
    if not endpoint:
        return None
    if endpoint in _gateways:
        return _gateways[endpoint]
    # An explicit --endpoint-url at a `local serve` of this project (a shell script).
    document = running_server(project.config.project_dir)
    if document is not None and str(document["endpoint"]).rstrip("/") == endpoint:
        return str(document["gateway"]).rstrip("/")
    return None


def local_urls(project: Project, env: str) -> tuple[str, str] | None:
    """(api_url, site_url) of `env` through the local gateway, or None off the emulator."""
    base = gateway_url(project)
    if base is None:
        return None
    return f"{api_base(base)}/{env}/api/", f"{base}/{env}/site/"


def api_base(gateway: str) -> str:
    """The gateway's base URL for the API: its host named API_HOST (another origin)."""
    return gateway.replace(f"//{HOST}:", f"//{API_HOST}:", 1)
