"""The per-project background emulator that `--local` starts, reuses and lets idle out.

The first `--local` command of a project starts `sdeliver local serve --background` as a
detached process (any free ports), which records itself in `.sdeliver/local.json` as a
foreground `local serve` does; later commands find it there. An O_EXCL lock file makes two
commands that start at once agree: one starts the server, the other waits for it. The
server stops itself after SDELIVER_LOCAL_IDLE seconds without a request (30 minutes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..endpoints import pid_alive, read_state, running_server, state_path
from ..errors import OperationFailed, UsageError

IDLE_VARIABLE = "SDELIVER_LOCAL_IDLE"
DEFAULT_IDLE = 30 * 60  # seconds without a request before a background server stops
START_LIMIT = 60.0  # seconds to wait for a server to record itself (moto imports slowly)
LOCK_FILE = "local.lock"
SERVER_LOG = "local.log"


def idle_timeout() -> float:
    """SDELIVER_LOCAL_IDLE in seconds (a usage error when it is not a number)."""
    raw = os.environ.get(IDLE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"{IDLE_VARIABLE}={raw!r} is not a number of seconds", hint="for example 1800"
        ) from None
    if value <= 0:
        raise UsageError(f"{IDLE_VARIABLE} must be more than 0 seconds")
    return value


class Activity:
    """When the server last answered a request: what its idle time counts from."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.last = clock()

    def touch(self) -> None:
        self.last = self._clock()

    def idle_for(self) -> float:
        return max(0.0, self._clock() - self.last)

    def expired(self, timeout: float) -> bool:
        return timeout > 0 and self.idle_for() >= timeout


# -- starting one --------------------------------------------------------------------------


def ensure_server(
    project_dir: Path, config_path: Path, announce: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The project's running server: the recorded one, or one started now (race-safe)."""
    deadline = time.monotonic() + START_LIMIT
    lock = state_path(project_dir).parent / LOCK_FILE
    while True:
        running = running_server(project_dir)
        if running is not None:
            return running
        if _take_lock(lock):
            try:
                # Another command may have started one between our look and the lock.
                running = running_server(project_dir)
                if running is not None:
                    return running
                return _start(project_dir, config_path, deadline, announce)
            finally:
                lock.unlink(missing_ok=True)
        if time.monotonic() > deadline:
            raise OperationFailed(
                "another sdeliver command is starting the local emulator and has not finished",
                hint=f"if none runs, remove {lock}",
            )
        time.sleep(0.1)


def _take_lock(lock: Path) -> bool:
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if _stale(lock):
            lock.unlink(missing_ok=True)  # the next attempt races fairly for a new one
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(f"{os.getpid()}\n")
    return True


def _stale(lock: Path) -> bool:
    """A lock whose holder died, or older than any start can take."""
    try:
        pid = int(lock.read_text(encoding="utf-8").strip() or "0")
        age = time.time() - lock.stat().st_mtime
    except (OSError, ValueError):
        return False  # being written or just removed: look again
    return (pid > 0 and not pid_alive(pid)) or age > START_LIMIT * 2


def _start(
    project_dir: Path,
    config_path: Path,
    deadline: float,
    announce: Callable[[str], None] | None,
) -> dict[str, Any]:
    log_path = state_path(project_dir).parent / SERVER_LOG
    command = [
        sys.executable, "-m", "sdeliver", "--config", str(config_path.resolve()),
        "local", "serve", "--port", "0", "--gateway-port", "0",
        "--idle-timeout", str(idle_timeout()), "--background",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own entry point
            command, cwd=project_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,  # Ctrl-C in the user's terminal does not reach it
        )
    while True:
        document = read_state(project_dir)
        if document is not None and document.get("pid") == process.pid:
            running = running_server(project_dir)
            if running is not None:
                if announce is not None:
                    announce(
                        f"started the local emulator for this project (pid {process.pid}, "
                        f"gateway {running['gateway']}); it stops after "
                        f"{_minutes(float(running.get('idle_timeout', 0)))} without requests "
                        "or with 'sdeliver local stop'"
                    )
                return running
        if process.poll() is not None:
            raise OperationFailed(
                f"the local emulator did not start: {_last_line(log_path)}",
                hint=f"see {log_path}",
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise OperationFailed(
                f"the local emulator did not start within {START_LIMIT:.0f} s",
                hint=f"see {log_path}",
            )
        time.sleep(0.1)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if lines:
            return lines[-1]
    return "it exited"


# -- status and stop -----------------------------------------------------------------------


def describe(project_dir: Path, now: float | None = None) -> dict[str, Any]:
    """What runs for this project: a JSON-ready document (`running` false when nothing)."""
    running = running_server(project_dir)
    if running is None:
        return {"running": False}
    now = time.time() if now is None else now
    last = running.get("last_request")
    document = {
        "running": True,
        "mode": "background" if running.get("background") else "foreground",
        "pid": running["pid"],
        "endpoint": running["endpoint"],
        "gateway": running["gateway"],
        "idle_seconds": round(max(0.0, now - float(last)), 1) if last is not None else None,
        "idle_timeout_seconds": running.get("idle_timeout") or None,
    }
    return document


def stop_server(project_dir: Path, wait: float = 20.0) -> dict[str, Any] | None:
    """SIGTERM the recorded server and wait for it to go; None when none ran."""
    document = read_state(project_dir)
    pid = document.get("pid") if document is not None else None
    if not isinstance(pid, int) or not pid_alive(pid):
        if document is not None:
            state_path(project_dir).unlink(missing_ok=True)  # a stale record
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid):
        raise OperationFailed(
            f"the local emulator (pid {pid}) did not stop within {wait:.0f} s",
            hint=f"kill {pid}",
        )
    return document


def _reap(pid: int) -> None:
    """Collect our own child's exit status (a zombie still counts as alive to kill -0)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# -- inside the server ---------------------------------------------------------------------


def watch_idle(
    activity: Activity,
    timeout: float,
    stopping: threading.Event,
    on_tick: Callable[[], None],
) -> None:
    """Until `stopping`: call on_tick twice a second; set `stopping` once idle too long."""
    while not stopping.wait(0.5):
        on_tick()
        if activity.expired(timeout):
            stopping.set()
