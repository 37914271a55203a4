"""Running one Lambda version's handler locally, as Lambda would: its code (fetched once per
version and code digest), its environment, its timeout, a fresh process.

Python handlers run on the declared runtime's interpreter (`python3.12` for python3.12)
when it is installed, else on this interpreter (warned once). Node.js handlers
(nodejs22.x and later) run on the machine's `node` through node_runner.mjs (a different
major version is warned once). `local_runtime_problem` says why a runtime cannot run here.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..endpoints import DUMMY_CREDENTIALS
from ..errors import AwsError

log = logging.getLogger("sdeliver.gateway")

PYTHON_RUNTIME = re.compile(r"python3\.(\d+)")
NODE_RUNTIME = re.compile(r"nodejs(\d+)\.x")
# AWS no longer lets functions be created or updated on nodejs20.x and older.
OLDEST_NODE = 22
NODE_RUNNER = Path(__file__).with_name("node_runner.mjs")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


# -- which runtimes run here ---------------------------------------------------------------


def local_runtime_problem(runtime: str) -> str | None:
    """Why the local gateway cannot run `runtime`, in one line; None when it can."""
    if PYTHON_RUNTIME.fullmatch(runtime):
        return None  # on its own interpreter, or this one
    node = NODE_RUNTIME.fullmatch(runtime)
    if node is not None:
        if int(node.group(1)) < OLDEST_NODE:
            return (
                f"the local gateway cannot run runtime {runtime}: AWS no longer allows "
                f"creating or updating functions on it; use nodejs22.x or nodejs24.x"
            )
        if node_version() is None:
            return (
                f"the local gateway cannot run runtime {runtime}: no working 'node' on PATH "
                f"(install Node.js {node.group(1)})"
            )
        return None
    return (
        f"the local gateway cannot run runtime {runtime or '(none)'}: it runs python3.x "
        f"and nodejs22.x/nodejs24.x functions only"
    )


@functools.cache
def _probe(executable: str, *args: str) -> str | None:
    """What `executable args` prints when it runs (pyenv shims exist but may not), else None."""
    try:
        done = subprocess.run(  # noqa: S603 - an interpreter found on PATH, no shell
            [executable, *args], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else None


def node_version() -> tuple[str, int] | None:
    """The machine's node and its major version, or None when there is none that runs."""
    node = shutil.which("node")
    if node is None:
        return None
    printed = _probe(node, "--version")  # "v20.20.2"
    found = re.fullmatch(r"v(\d+)\..*", printed or "")
    return (node, int(found.group(1))) if found else None


def python_for(runtime: str) -> str:
    """The interpreter for a python3.x runtime: its own when installed, else this one."""
    found = PYTHON_RUNTIME.fullmatch(runtime)
    if found is None or int(found.group(1)) == sys.version_info.minor:
        return sys.executable
    name = f"python3.{found.group(1)}"
    executable = shutil.which(name)
    if executable is not None and _probe(executable, "-c", "print(1)") == "1":
        return executable
    _warn_once(
        f"python:{runtime}", "no working %s on PATH: running %s functions on Python %d.%d (%s)",
        name, runtime, sys.version_info.major, sys.version_info.minor, sys.executable,
    )
    return sys.executable


# What Lambda's Python runtimes provide besides the standard library (all pure Python).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@functools.cache
def _runtime_packages() -> Path | None:
    """A directory linking this environment's copies of RUNTIME_PACKAGES, for handlers run
    on another interpreter (removed at exit)."""
    found = {}
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            origin = Path(spec.origin)
            found[origin.name if origin.stem != "__init__" else name] = (
                origin if origin.stem != "__init__" else origin.parent
            )
    if not found:
        return None
    root = Path(tempfile.mkdtemp(prefix="sdeliver-runtime-"))
    atexit.register(shutil.rmtree, root, True)
    for link, target in found.items():
        (root / link).symlink_to(target, target_is_directory=target.is_dir())
    return root


# Runs in the child: the handler's prints go to stderr (its log); the result to the real
# stdout, the only thing written there.
RUNNER = r"""
import importlib, json, os, sys, time, traceback
result_fd = os.dup(1)
os.dup2(2, 1)
code_dir, handler, name, version, arn, memory, request_id, timeout, extra = sys.argv[1:10]
sys.path[:] = [code_dir] + [p for p in sys.path if p not in ("", os.getcwd())]
sys.path += [extra] if extra else []
deadline = time.monotonic() + float(timeout)
class Context:
    function_name = name
    function_version = version
    invoked_function_arn = arn
    memory_limit_in_mb = memory
    aws_request_id = request_id
    log_group_name = "/aws/lambda/" + name
    log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.monotonic()) * 1000))
try:
    module_name, _, function = handler.rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    outcome = {"ok": True, "result": getattr(module, function)(json.load(sys.stdin), Context())}
    document = json.dumps(outcome)
except BaseException as err:
    traceback.print_exc()
    document = json.dumps({"ok": False, "errorType": type(err).__name__, "errorMessage": str(err)})
with os.fdopen(result_fd, "w", encoding="utf-8") as out:
    out.write(document)
"""


@dataclass
class Invocation:
    outcome: dict[str, Any] | None  # None: the child died without a result
    log: str
    timed_out: bool = False


def run_handler(
    code_dir: Path,
    configuration: dict[str, Any],
    event: dict[str, Any],
    *,
    timeout: float,
    endpoint: str,
    request_id: str,
    python: str | None = None,
    invoked_arn: str | None = None,
) -> Invocation:
    """Run one version's handler on `event` in a fresh process, as Lambda would.

    `invoked_arn` is the ARN the caller invoked (alias-qualified through API Gateway);
    `python` overrides the runtime's interpreter. A runtime that `local_runtime_problem`
    refuses raises ValueError.
    """
    runtime = str(configuration.get("Runtime") or "")
    problem = local_runtime_problem(runtime)
    if problem is not None:
        raise ValueError(problem)
    env = _environment(code_dir, configuration, endpoint)
    arn = invoked_arn or str(configuration.get("FunctionArn", ""))
    common = [
        str(code_dir), str(configuration.get("Handler", "")), str(configuration["FunctionName"]),
        str(configuration.get("Version", "$LATEST")), arn,
        # The context counts down from the function's timeout, as on Lambda, even when the
        # caller (API Gateway's 29 s) stops waiting sooner.
        str(configuration.get("MemorySize", 128)), request_id,
        str(configuration.get("Timeout") or timeout),
    ]
    if NODE_RUNTIME.fullmatch(runtime):
        return _run_node(runtime, common, event, env, code_dir, timeout)
    interpreter = python or python_for(runtime)
    # Lambda's Python runtimes carry boto3; another interpreter may not: it gets ours, last.
    extra = "" if interpreter == sys.executable else str(_runtime_packages() or "")
    args = [interpreter, "-c", RUNNER, *common, extra]
    try:
        done = subprocess.run(  # noqa: S603 - our interpreter, our runner script
            args, input=json.dumps(event).encode(), capture_output=True, timeout=timeout,
            cwd=code_dir, env=env, check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return Invocation(None, _text(expired.stderr), timed_out=True)
    return Invocation(_outcome(done.stdout), _text(done.stderr))


def _environment(code_dir: Path, configuration: dict[str, Any], endpoint: str) -> dict[str, str]:
    """The variables Lambda sets, the function's own, and the emulator's endpoint."""
    name = configuration["FunctionName"]
    region = configuration.get("FunctionArn", "arn:aws:lambda:us-east-1").split(":")[3]
    runtime = str(configuration.get("Runtime") or "")
    return {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NODE_PATH": str(code_dir),
        **{k: os.environ[k] for k in ("SYSTEMROOT",) if k in os.environ},
        **((configuration.get("Environment") or {}).get("Variables") or {}),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(configuration.get("Version", "$LATEST")),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": configuration.get("Handler", ""),
        # The handler's own AWS calls go to the emulator, never to an account: the AWS
        # SDKs for Python and JavaScript v3 read AWS_ENDPOINT_URL (node_runner.mjs
        # configures an SDK v2 the function ships).
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
    }


def _run_node(
    runtime: str, common: list[str], event: dict[str, Any], env: dict[str, str],
    code_dir: Path, timeout: float,
) -> Invocation:
    found = node_version()
    if found is None:  # removed since local_runtime_problem looked
        raise ValueError(local_runtime_problem(runtime) or f"no node for {runtime}")
    node, major = found
    declared = int(NODE_RUNTIME.fullmatch(runtime).group(1))  # type: ignore[union-attr]
    if major != declared:
        _warn_once(
            f"node:{runtime}:{major}", "running %s functions on the local node %d "
            "(%s): behaviour specific to Node.js %d may differ", runtime, major, node, declared,
        )
    memory = int(common[5]) if common[5].isdigit() else 128
    options = []
    if "max-old-space-size" not in env.get("NODE_OPTIONS", "").replace("_", "-"):
        options.append(f"--max-old-space-size={max(memory - memory // 10, 16)}")  # as Lambda
    with tempfile.TemporaryDirectory(prefix="sdeliver-invoke-") as scratch:
        event_file, result_file = Path(scratch) / "event.json", Path(scratch) / "result.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        args = [node, *options, str(NODE_RUNNER), *common, runtime, str(event_file),
                str(result_file)]
        try:
            done = subprocess.run(  # noqa: S603 - the machine's node, our runner script
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=timeout, cwd=code_dir, env=env, check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return Invocation(None, _text(expired.stdout), timed_out=True)
        result = result_file.read_bytes() if result_file.exists() else b""
    return Invocation(_outcome(result), _text(done.stdout))


def _outcome(document: bytes) -> dict[str, Any] | None:
    try:
        outcome = json.loads(document.decode("utf-8"))
    except ValueError:
        return None
    return outcome if isinstance(outcome, dict) else None


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


class CodeCache:
    """Each version's code, extracted once per (function, version, CodeSha256)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sdeliver-gateway-"))
        self._lock = threading.Lock()

    def get(self, configuration: dict[str, Any], code: dict[str, Any]) -> Path:
        name, version = configuration["FunctionName"], str(configuration.get("Version"))
        sha = str(configuration.get("CodeSha256", ""))
        key = hashlib.sha256(f"{name}\0{version}\0{sha}".encode()).hexdigest()[:32]
        target = self.root / key
        with self._lock:
            if target.is_dir():
                return target
            data = code_bytes(configuration, code)
            staging = Path(tempfile.mkdtemp(dir=self.root))
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(staging)  # zipfile drops ".." and "/": it stays inside
            staging.rename(target)
        return target

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def code_bytes(configuration: dict[str, Any], code: dict[str, Any]) -> bytes:
    """The version's zip: from the emulator in this process, else from Code.Location."""
    data = _code_from_moto(configuration)
    if data is None:
        location = str(code.get("Location", ""))
        if not location.startswith(("http://", "https://")):
            raise AwsError(f"{configuration['FunctionName']}: no code location to fetch")
        try:
            with urllib.request.urlopen(location, timeout=60) as response:  # noqa: S310
                data = response.read()
        except OSError as err:
            name = configuration["FunctionName"]
            raise AwsError(f"{name}: cannot fetch its code: {err}") from None
    return data


def _code_from_moto(configuration: dict[str, Any]) -> bytes | None:
    # moto's Code.Location names a host that does not exist; when the emulator runs in this
    # process (it always does with the gateway) its backend holds the bytes.
    try:
        from moto.awslambda.models import lambda_backends
    except ImportError:
        return None
    arn = str(configuration.get("FunctionArn", ""))
    parts = arn.split(":")
    if len(parts) < 7:
        return None
    try:
        backend = lambda_backends[parts[4]][parts[3]]
        function = backend.get_function(configuration["FunctionName"], configuration.get("Version"))
    except Exception:  # anything moto raises means "not here"
        return None
    data = getattr(function, "code_bytes", None)
    sha = base64.b64encode(hashlib.sha256(data or b"").digest()).decode()
    if not data or sha != configuration.get("CodeSha256"):
        return None
    return bytes(data)
