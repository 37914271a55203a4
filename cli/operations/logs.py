"""`sdeliver logs`: what an environment's function printed, on AWS or on the local gateway.

On AWS: the function's CloudWatch Logs group, only the log streams of the Lambda versions
the environment's alias points to (a stream is named `2026/11/30/[<version>]<id>`: one
stream per version instance), found with `filter_log_events`, every page. Locally: the
gateway's request log, `.sdeliver/gateway.log`, which the background emulator (or `local
serve`) writes: one line per request, the handler's output, its failures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..aws import lambda_
from ..errors import AwsError, UsageError
from ..project import Project

GATEWAY_LOG = Path(".sdeliver") / "gateway.log"
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A gateway.log line: "2026-11-30 08:05:32,912 GET /test/api/hello 200 90 ms".
_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3} (.*)$")
_REQUEST = re.compile(r"^[A-Z]+ /([^/\s]+)/")
_STREAM_VERSION = re.compile(r"\[([^\]]+)\]")


@dataclass
class LogLine:
    when: float  # epoch seconds
    message: str
    version: str | None = None  # the Lambda version (AWS), when the stream says

    def as_json(self) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.when, timezone.utc).isoformat(),
            "lambda_version": self.version,
            "message": self.message,
        }


def parse_since(text: str) -> float:
    """Seconds in "30s", "10m", "2h" or "1d"."""
    found = _DURATION.match(text.strip())
    if not found:
        raise UsageError(
            f"--since {text!r} is not a duration", hint="for example 30s, 10m, 2h or 1d"
        )
    return int(found.group(1)) * _UNITS[found.group(2)]


# -- AWS -----------------------------------------------------------------------------------


def alias_versions(project: Project, env: str) -> list[str]:
    """The Lambda versions `env`'s alias points to: its version and a canary's."""
    project.config.env(env)
    alias = lambda_.get_alias(project.aws, project.function_name, env)
    if alias is None:
        return []
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return [str(alias["FunctionVersion"]), *sorted(weights)]


def log_group(project: Project) -> str:
    return f"/aws/lambda/{project.function_name}"


def cloudwatch_lines(
    project: Project, versions: list[str], start: float, seen: set[str] | None = None
) -> list[LogLine]:
    """The events since `start` (epoch seconds) in the streams of `versions`, oldest
    first; `seen` (event ids) skips what an earlier call returned."""
    group = log_group(project)
    wanted = set(versions)
    lines: list[LogLine] = []
    try:
        for event in project.aws.paginate(
            "logs", "filter_log_events", "events", resource=group,
            logGroupName=group, startTime=int(start * 1000),
        ):
            match = _STREAM_VERSION.search(str(event.get("logStreamName", "")))
            version = match.group(1) if match else None
            if version not in wanted:
                continue
            if seen is not None:
                if event.get("eventId") in seen:
                    continue
                seen.add(str(event.get("eventId")))
            message = str(event.get("message", "")).rstrip("\n")
            lines.append(LogLine(event["timestamp"] / 1000, message, version))
    except AwsError as err:
        if err.code != "ResourceNotFoundException":
            raise
        return []  # no invocation has logged yet: the group is made by the first
    lines.sort(key=lambda line: line.when)
    return lines


def follow_cloudwatch(
    project: Project,
    env: str,
    start: float,
    *,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> Iterator[LogLine]:
    """New events as they come (Ctrl-C ends it); the alias's versions are read each round,
    so a deploy or promotion is followed."""
    seen: set[str] = set()
    done = 0
    while rounds is None or done < rounds:
        lines = cloudwatch_lines(project, alias_versions(project, env), start, seen)
        yield from lines
        if lines:
            start = max(start, lines[-1].when - 5)  # late events land a little back in time
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)


# -- the local gateway ---------------------------------------------------------------------


def gateway_log(project_dir: Path) -> Path:
    return project_dir / GATEWAY_LOG


def gateway_lines(text: str, env: str, start: float) -> list[LogLine]:
    """The lines of gateway.log since `start` that concern `env`: its requests, and every
    line that is not another environment's request (the handler's output, its failures).
    A line without a time stamp (a traceback's) goes with the line before it."""
    lines: list[LogLine] = []
    keep, when = False, 0.0
    for raw in text.splitlines():
        stamped = _STAMPED.match(raw)
        if stamped:
            when = _local_epoch(stamped.group(1))
            request = _REQUEST.match(stamped.group(2))
            keep = when >= start and (request is None or request.group(1) == env)
            if keep:
                lines.append(LogLine(when, stamped.group(2)))
        elif keep:
            lines.append(LogLine(when, raw))
    return lines


def _local_epoch(stamp: str) -> float:
    # logging's asctime is local time.
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def follow_gateway(
    path: Path,
    env: str,
    start: float,
    *,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> Iterator[LogLine]:
    """gateway.log's lines for `env` as they are written (a `tail -f`)."""
    offset, carry, done = 0, "", 0
    while rounds is None or done < rounds:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size < offset:
            offset, carry = 0, ""  # a new server started the file again
        if size > offset:
            with path.open("rb") as file:
                file.seek(offset)
                chunk = file.read(size - offset)
            offset = size
            text = carry + chunk.decode("utf-8", errors="replace")
            complete, _, carry = text.rpartition("\n")
            if complete:
                yield from gateway_lines(complete, env, start)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)
