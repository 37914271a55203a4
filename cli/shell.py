"""Running the project's own commands (build, e2e), streaming their output as they go."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .progress import Progress


def run_command(
    command: str,
    *,
    cwd: Path,
    progress: Progress,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run one declared command through the shell; returns its exit status (124: timed out).

    The command comes from the user's own sdeliver.yaml, so running it through the shell
    is the point (pipes, &&, environment expansion), not an injection.

    It runs in a process group of its own, and the whole group is stopped when it outlasts
    `timeout` or when this process is interrupted (Ctrl-C, SIGTERM, any error): neither the
    shell nor what it started keeps running after sdeliver has put the environment back.
    """
    merged = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(  # noqa: S602
            command,
            shell=True,
            cwd=cwd,
            env=merged,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as err:
        progress.output(f"cannot run {command!r}: {err}")
        return 127
    assert proc.stdout is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop_group(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for line in proc.stdout:
            progress.output(line.rstrip("\n"))
        status = proc.wait()
    except BaseException:
        stop_group(proc)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        proc.stdout.close()
    if expired.is_set():
        progress.output(f"{command!r} timed out after {timeout:g} s: stopped")
        return 124
    return status


def stop_group(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGTERM the command's process group, then SIGKILL the whole group after `grace`:
    a child that ignores SIGTERM must not outlive the shell (it would keep the output pipe,
    and this command with it, open)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the shell: a zombie still counts as the group's member
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def source_revision(project_dir: Path, *, mark_dirty: bool = True) -> str | None:
    """The checkout's commit (40 hex), `<commit>-dirty` when the working tree differs from
    it (changed or untracked files: the build is not that commit), or None when the
    project is not a git checkout. mark_dirty=False: the commit alone (for `git archive`)."""
    revision = _git(project_dir, "rev-parse", "HEAD")
    if revision is None or len(revision) != 40:
        return None
    if mark_dirty and _git(project_dir, "status", "--porcelain") != "":
        return f"{revision}-dirty"
    return revision


def _git(directory: Path, *args: str) -> str | None:
    """git's stripped output, or None when git fails or is missing."""
    try:
        found = subprocess.run(  # noqa: S603 - fixed git subcommands, no user input
            ["git", *args],  # noqa: S607 - git from PATH, as a user runs it
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() if found.returncode == 0 else None
