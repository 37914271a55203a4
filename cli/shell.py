"""Running the project's own commands (build, e2e), streaming their output as they go."""

from __future__ import annotations

import os
import subprocess
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
    """Run one declared command through the shell; returns its exit status.

    The command comes from the user's own sdeliver.yaml, so running it through the shell
    is the point (pipes, &&, environment expansion), not an injection.
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
        )
    except OSError as err:
        progress.output(f"cannot run {command!r}: {err}")
        return 127
    assert proc.stdout is not None
    for line in proc.stdout:
        progress.output(line.rstrip("\n"))
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        progress.output(f"{command!r} timed out after {timeout} s")
        return 124


def source_revision(project_dir: Path) -> str | None:
    """The checkout's commit (40 hex), or None when the project is not a git checkout."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as a user runs it
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = found.stdout.strip()
    return revision if found.returncode == 0 and len(revision) == 40 else None
