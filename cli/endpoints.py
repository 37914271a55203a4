"""Where the app answers when sdeliver talks to the local emulator: the gateway each
emulator endpoint is served by (registered by the command that started or found it), the
project's `.sdeliver/local.json` that a running `local serve` or background emulator
records, and the URLs of each environment there.

Release code asks `local_urls(project, env)`: the gateway's URLs when the project talks to
an emulator, None on AWS. Nothing here imports the emulator (moto) or starts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .project import Project

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


# -- the gateway of an emulator endpoint ------------------------------------------------


def register_gateway(endpoint: str, gateway: str) -> Callable[[], None]:
    key = endpoint.rstrip("/")
    _gateways[key] = gateway.rstrip("/")

    def unregister() -> None:
        _gateways.pop(key, None)

    return unregister


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
    return env_urls(base, project.config, env)


def env_urls(gateway: str, config: Config | None, env: str) -> tuple[str, str]:
    """(api_url, site_url) of `env` at the gateway. s3-website: two origins, as on AWS (the
    API under API_HOST, the site at /<env>/site/). cloudfront: one origin, as its
    distribution (the live release's site at /<env>/, the API at /<env>/api/)."""
    if config is not None and config.site is not None and config.site.hosting == "cloudfront":
        return f"{gateway}/{env}/api/", f"{gateway}/{env}/"
    return f"{api_base(gateway)}/{env}/api/", f"{gateway}/{env}/site/"


def api_base(gateway: str) -> str:
    """The gateway's base URL for the API: its host named API_HOST (another origin)."""
    return gateway.replace(f"//{HOST}:", f"//{API_HOST}:", 1)
