"""Running one Lambda version's Python handler locally, as Lambda would: its code (fetched
once per version and code digest), its environment, its timeout, a fresh process."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
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

from ..errors import AwsError
from .emulator import DUMMY_CREDENTIALS

# Runs in the child: the handler's prints go to stderr (its log); the result to the real
# stdout, the only thing written there.
RUNNER = r"""
import importlib, json, os, sys, time, traceback
result_fd = os.dup(1)
os.dup2(2, 1)
code_dir, handler, name, version, arn, memory, request_id, timeout = sys.argv[1:9]
sys.path[:] = [code_dir] + [p for p in sys.path if p not in ("", os.getcwd())]
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
    python: str = sys.executable,
) -> Invocation:
    """Run one version's handler on `event` in a fresh Python process, as Lambda would."""
    name = configuration["FunctionName"]
    region = configuration.get("FunctionArn", "arn:aws:lambda:us-east-1").split(":")[3]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **{k: os.environ[k] for k in ("SYSTEMROOT",) if k in os.environ},
        **((configuration.get("Environment") or {}).get("Variables") or {}),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(configuration.get("Version", "$LATEST")),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": configuration.get("Handler", ""),
        # The handler's own AWS calls go to the emulator, never to an account.
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
    }
    args = [
        python, "-c", RUNNER, str(code_dir), configuration.get("Handler", ""), name,
        str(configuration.get("Version", "$LATEST")), configuration.get("FunctionArn", ""),
        str(configuration.get("MemorySize", 128)), request_id, str(timeout),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our interpreter, our runner script
            args, input=json.dumps(event).encode(), capture_output=True, timeout=timeout,
            cwd=code_dir, env=env, check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return Invocation(None, _text(expired.stderr), timed_out=True)
    try:
        outcome = json.loads(done.stdout.decode("utf-8"))
    except ValueError:
        outcome = None
    return Invocation(outcome if isinstance(outcome, dict) else None, _text(done.stderr))


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
