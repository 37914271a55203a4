"""What every benchmark shares: a moto server on loopback, a clean environment for the
CLIs, timing, call counting, and one way to print a figure with the command that made it.

The server is `sdeliver local serve` in a subprocess (it applies the emulator's patch that
lets moto skip bucket-policy conditions: the artifact bucket denies non-TLS requests, and
the server is plain HTTP on loopback). Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SAMPLE = ROOT / "tests" / "fixtures" / "sample"
PYTHON = sys.executable
# Results of a run, one JSON file per benchmark, read by bench/run for its summary.
RESULTS_DIR = Path(os.environ.get("SDELIVER_BENCH_OUT", tempfile.gettempdir())) / "sdeliver-bench"

WRITE_EXCEPTIONS = (
    "Get", "List", "Describe", "Head", "Lookup", "Search", "Test", "Select", "BatchGet",
)


def _this_checkout() -> Path:
    """A directory whose `sdeliver` package is this checkout's cli/ (and config/).

    Put first on PYTHONPATH, so the figures are of this tree's code even when the
    installed (editable) sdeliver points at another checkout.
    """
    path = Path(tempfile.mkdtemp(prefix="sdeliver-bench-src-"))
    package = path / "sdeliver"
    package.mkdir()
    for item in (ROOT / "cli").iterdir():
        if item.name != "__pycache__":
            (package / item.name).symlink_to(item)
    (package / "defaults").symlink_to(ROOT / "config")
    atexit.register(shutil.rmtree, path, True)
    return path


# bench/run's time limit sends SIGTERM: exit through the context managers, so the moto
# server is stopped and the temp dirs are removed.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
SOURCE = _this_checkout()
sys.path.insert(0, str(SOURCE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI under test: dummy credentials, no profile, no config files."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SDELIVER_")) or k == "SDELIVER_BENCH_OUT"
    }
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - a dummy for the loopback emulator
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_EC2_METADATA_DISABLED="true",
        SDELIVER_RETRY_MAX_SECONDS="10",
    )
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


@dataclass
class Server:
    """A moto server in a subprocess, on loopback."""

    endpoint: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def reset(self) -> None:
        url = f"{self.endpoint}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - loopback http
        urllib.request.urlopen(request, timeout=60).close()  # noqa: S310 - loopback http

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - dummy
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def moto_server() -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="sdeliver-bench-moto-"))
    port, gateway = free_port(), free_port()
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [PYTHON, "-m", "sdeliver", "local", "serve", "--port", str(port),
         "--gateway-port", str(gateway)],
        cwd=workdir,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, workdir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.reset()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the moto server did not start: " + (workdir / "server.log").read_text()
                    ) from None
                time.sleep(0.2)
        yield server
    finally:
        log.close()
        server.stop()


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"sdeliver-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- running and timing -------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    code: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
    check: bool = True, timeout: float = 300,
) -> Run:
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}"
            f"\n{done.stderr[-4000:]}"
        )
    return Run(elapsed, done.returncode, done.stdout, done.stderr)


def sdeliver(*args: str) -> list[str]:
    return [PYTHON, "-m", "sdeliver", *args]


def script(name: str) -> str | None:
    """A console script of this interpreter (not a version manager's shim, which would add
    its own start-up time to both sides), else whatever PATH finds."""
    beside = Path(PYTHON).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def sdeliver_bin() -> list[str]:
    """The installed console script, as a user runs it (falls back to python -m)."""
    found = script("sdeliver")
    return [found] if found else sdeliver()


def median_of(argv: Sequence[str], times: int, **kwargs: Any) -> tuple[float, list[float]]:
    samples = [run(argv, **kwargs).seconds for _ in range(times)]
    return statistics.median(samples), samples


# -- counting AWS calls -------------------------------------------------------------------


def is_write(operation: str) -> bool:
    """As sdeliver.aws.is_write: an operation whose name does not start like a read."""
    return not operation.startswith(WRITE_EXCEPTIONS)


@dataclass
class Calls:
    """The AWS calls one command made, from SDELIVER_CALL_LOG (`service Operation` lines)."""

    lines: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Calls:
        return cls(path.read_text().splitlines() if path.exists() else [])

    @property
    def reads(self) -> int:
        return len(self.lines) - self.writes

    @property
    def writes(self) -> int:
        return sum(1 for line in self.lines if is_write(line.split(" ", 1)[1]))

    def write_ops(self) -> dict[str, int]:
        return dict(Counter(line for line in self.lines if is_write(line.split(" ", 1)[1])))

    def read_ops(self) -> dict[str, int]:
        return dict(Counter(line for line in self.lines if not is_write(line.split(" ", 1)[1])))


def counted(
    argv: Sequence[str], *, cwd: Path, endpoint: str, log: Path, check: bool = True,
    extra_env: dict[str, str] | None = None,
) -> tuple[Run, Calls]:
    """Run a CLI command against the server and count the AWS calls it made."""
    log.write_text("")
    env = clean_env(SDELIVER_ENDPOINT_URL=endpoint, SDELIVER_CALL_LOG=str(log), **(extra_env or {}))
    result = run(argv, cwd=cwd, env=env, check=check)
    return result, Calls.read(log)


# -- projects -----------------------------------------------------------------------------

CONFIG = """\
app: dromedary
region: us-east-1
function:
  name: dromedary-app
  runtime: python3.12
  handler: app.handler
  source: app/
  memory: 256
  timeout: 10
api:
  name: dromedary
  openapi: api/openapi.yaml
site:
  source: site/
  config:
    title: Dromedary
environments:
{environments}
dns:
  zone: example.com
"""


def write_project(target: Path, environments: Sequence[str] = ("test", "prod")) -> Path:
    """The sample app with the example's shape, minus build commands and e2e (they run no
    AWS calls and would only add their own time)."""
    shutil.copytree(SAMPLE / "app", target / "app")
    shutil.copytree(SAMPLE / "api", target / "api")
    shutil.copytree(SAMPLE / "site", target / "site")
    lines = []
    for i, env in enumerate(environments):
        domain = "dromedary.example.com" if env == "prod" else f"{env}.dromedary.example.com"
        if env not in ("test", "prod"):
            domain = f"{env}-{i}.dromedary.example.com"
        lines.append(f"  {env}:\n    domain: {domain}")
    (target / "sdeliver.yaml").write_text(CONFIG.format(environments="\n".join(lines)))
    return target


def create_zone(server: Server) -> None:
    server.client("route53").create_hosted_zone(Name="example.com", CallerReference="bench")


# -- reporting ----------------------------------------------------------------------------


def heading(title: str) -> None:
    print(f"\n== {title}", flush=True)


def figure(label: str, value: str, command: str | None = None) -> None:
    print(f"  {label:<52} {value}", flush=True)
    if command:
        print(f"      $ {command}", flush=True)


def verdict(goal: str, met: bool) -> str:
    return f"{'MET' if met else 'NOT MET'} ({goal})"


def save(name: str, data: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {**data, "load_average": os.getloadavg()}  # other work on the machine skews times
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True))


def require_aws_cli() -> list[str]:
    """The awscli (not a project dependency): installed with pip when missing."""
    found = script("aws")
    if found is None:
        run([PYTHON, "-m", "pip", "install", "--quiet", "awscli"], timeout=600)
        found = script("aws")
    if found is None:
        raise RuntimeError("awscli could not be installed (python -m pip install awscli)")
    return [found]


def require_zip() -> str | None:
    """Debian's zip, installed with apt-get when missing; None when that fails."""
    found = shutil.which("zip")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        with contextlib.suppress(Exception):
            run(["apt-get", "install", "-y", "-qq", "zip"], timeout=600)
        found = shutil.which("zip")
    return found
