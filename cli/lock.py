"""The environment lock: a lease object in S3 that one releasing command holds at a time.

`<prefix>/locks/<env>.json` is created with a conditional create (`If-None-Match: *`), so
only one writer can hold it. It names the owner (STS caller ARN), host, pid, command and
expiry. A lease that expired, or that a dead process on this same host left behind, is
taken over; any other lease makes the command fail with `EnvironmentLocked` (exit 4).
Deletes and renewals are conditional on the ETag we read or wrote (`If-Match`), so a
holder only ever removes or extends its own lease.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .aws import error_code, s3
from .errors import AwsError, EnvironmentLocked, OperationFailed
from .ledger import is_conflict, iso, parse_iso, utc_now

if TYPE_CHECKING:
    from .project import Project

DEFAULT_TTL = timedelta(minutes=30)
# A held lease is renewed this often (a third of its time to live: two renewals may fail
# before it could expire), so a command that runs longer than the ttl keeps it.
HEARTBEAT_SHARE = 3
POLL_SECONDS = (1.0, 2.0)  # how often `wait` looks again, with jitter
TAKEOVER_ATTEMPTS = 20
# A bucket or endpoint without conditional deletes answers one of these to If-Match.
UNSUPPORTED = ("NotImplemented", "InvalidArgument", "InvalidRequest", "501")
GONE = ("NoSuchKey", "404", "NotFound")


def this_host() -> str:
    """Where this process runs. In Lambda, hostnames repeat across sandboxes; the log
    stream does not, so a dead-process takeover can never hit another live sandbox."""
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    return f"lambda:{stream}" if stream else socket.gethostname()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


@dataclass(frozen=True)
class Lease:
    owner: str  # the STS caller ARN
    host: str
    pid: int
    command: str
    started: str  # UTC ISO-8601 with Z
    expires: str
    # Unique per acquisition: two threads of one process (or two sandboxes reusing a pid)
    # can write leases equal in every other field to the millisecond, and a racer that
    # lost the create must never mistake the winner's lease for its own lost answer.
    token: str = ""

    @classmethod
    def parse(cls, body: bytes, where: str) -> Lease:
        try:
            data = json.loads(body)
            lease = cls(
                owner=str(data["owner"]), host=str(data["host"]), pid=int(data["pid"]),
                command=str(data["command"]), started=str(data["started"]),
                expires=str(data["expires"]), token=str(data.get("token", "")),
            )
            parse_iso(lease.started), parse_iso(lease.expires)  # read later: fail here
            return lease
        except (ValueError, KeyError, TypeError) as err:
            raise OperationFailed(
                f"the lock {where} is unreadable: {err}",
                hint="remove it with 'sdeliver unlock --force'",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for `unlock --json` and `status`)."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    def expired(self, now: datetime | None = None) -> bool:
        return parse_iso(self.expires) <= (now or utc_now())

    def describe(self) -> str:
        since = parse_iso(self.started).strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.owner} ({self.command} on host {self.host}, pid {self.pid}) since {since}"


@dataclass(frozen=True)
class UnreadableLease:
    """A lock object that is not a lease (truncated, hand-written, another tool's): shown as
    its raw bytes before `unlock --force` removes it, since nothing else says who left it."""

    where: str
    problem: str  # why it is not a lease, one line
    raw: bytes

    SHOWN_BYTES = 200

    def preview(self) -> str:
        """The first SHOWN_BYTES bytes, escaped: control bytes never reach the terminal."""
        text = repr(self.raw[: self.SHOWN_BYTES])[2:-1]
        more = len(self.raw) - self.SHOWN_BYTES
        return text + (f"... ({more} more bytes)" if more > 0 else "")

    def describe(self) -> str:
        return f"an unreadable lease ({self.problem}), {len(self.raw)} bytes: {self.preview()}"

    def to_dict(self) -> dict[str, Any]:
        return {"unreadable": True, "problem": self.problem, "bytes": len(self.raw),
                "raw": self.preview()}


def lock_key(project: Project, env: str) -> str:
    return f"{project.prefix}/locks/{env}.json"


def _where(project: Project, env: str) -> str:
    return f"s3://{project.artifact_bucket}/{lock_key(project, env)}"


def _read(project: Project, env: str) -> tuple[Lease, str] | None:
    """The lease and its ETag, or None when the environment is not locked."""
    found = s3.get(project.aws, project.artifact_bucket, lock_key(project, env))
    if found is None:
        return None
    return Lease.parse(found.body, _where(project, env)), found.etag


def _delete_if(
    project: Project, env: str, etag: str, lease: Lease | UnreadableLease | None = None
) -> bool:
    """Delete the lease only if it is still the one with `etag`; True when it is gone."""
    key = lock_key(project, env)
    try:
        project.aws.call(
            "s3", "delete_object", resource=_where(project, env), ignore=GONE,
            Bucket=project.artifact_bucket, Key=key, IfMatch=etag,
        )
        return True
    except AwsError as err:
        if is_conflict(err):
            return False
        # LocalStack answers 501 NotImplemented to If-Match; an emulator may say NotOffered.
        if error_code(err) not in (*UNSUPPORTED, "NotOffered"):
            raise
        if not project.facts.get("said: no conditional delete"):  # once per command
            project.facts["said: no conditional delete"] = True
            project.aws.log(
                f"s3.DeleteObject with If-Match is not supported here ({error_code(err)}): "
                "removing the lease by compare-then-delete"
            )
    # No conditional deletes here: compare, then delete (a narrow race, the best available).
    now = inspect_lock(project, env)  # an unreadable object is there too, not gone
    if now is None:
        return True
    if now[1] != etag and (lease is None or now[0] != lease):
        return False
    project.aws.call(
        "s3", "delete_object", resource=_where(project, env), ignore=GONE,
        Bucket=project.artifact_bucket, Key=key,
    )
    return True


def read_lock(project: Project, env: str) -> Lease | None:
    """Who holds the environment's lock, or None."""
    found = _read(project, env)
    return found[0] if found else None


def inspect_lock(project: Project, env: str) -> tuple[Lease | UnreadableLease, str] | None:
    """What the lock object holds, readable or not, and its ETag; None when unlocked."""
    found = s3.get(project.aws, project.artifact_bucket, lock_key(project, env))
    if found is None:
        return None
    raw, where = found.body, _where(project, env)
    try:
        held: Lease | UnreadableLease = Lease.parse(raw, where)
    except OperationFailed as err:
        problem = err.message.removeprefix(f"the lock {where} is unreadable: ")
        held = UnreadableLease(where, " ".join(problem.split()), raw)
    return held, found.etag


def force_unlock(
    project: Project, env: str, shown: Lease | UnreadableLease | None = None
) -> Lease | UnreadableLease | None:
    """Break the lock whoever holds it, readable or not; returns what was removed (None if
    there was nothing). With `shown` (what the user confirmed), a lock that changed since
    is left alone: breaking a lease nobody has seen is not what was asked."""
    for _ in range(TAKEOVER_ATTEMPTS):
        found = inspect_lock(project, env)
        if found is None:
            return None
        held, etag = found
        if shown is not None and held != shown:
            raise OperationFailed(
                f"the lock of {env} changed since it was shown: now {held.describe()}",
                hint=f"look again with 'sdeliver unlock --env {env}', then retry",
            )
        if _delete_if(project, env, etag, held):
            return held
    raise OperationFailed(f"the lock of {env} keeps changing; retry 'sdeliver unlock --force'")


class EnvironmentLock:
    """`with EnvironmentLock(project, "prod", "deploy"):` holds the prod lease inside.

    wait: seconds to keep trying while another command holds it (None: fail at once).
    """

    def __init__(
        self,
        project: Project,
        env: str,
        command: str,
        ttl: timedelta = DEFAULT_TTL,
        *,
        wait: float | None = None,
    ) -> None:
        self.project = project
        self.env = env
        self.command = command
        self.ttl = ttl
        self.wait = wait
        self.lease: Lease | None = None
        self._etag: str | None = None
        # The lease of a command that died holding it, when this one took it over.
        self.took_over: Lease | None = None
        # Renewals (the heartbeat's and `confirm`'s) one at a time: each is conditional on
        # the ETag the previous one wrote.
        self._writing = threading.RLock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost: EnvironmentLocked | None = None  # set when a renewal found it taken
        self.waited = False  # whether acquiring had to wait for another holder

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        self.start_heartbeat()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # -- acquire -------------------------------------------------------------------------

    def _new_lease(self) -> Lease:
        now = utc_now()
        return Lease(
            owner=self.project.aws.caller_arn, host=this_host(), pid=os.getpid(),
            command=self.command, started=iso(now, millis=True),
            expires=iso(now + self.ttl, millis=True), token=uuid.uuid4().hex,
        )

    def _put(self, lease: Lease, **condition: Any) -> str:
        found = self.project.aws.call(
            "s3", "put_object", resource=_where(self.project, self.env),
            Bucket=self.project.artifact_bucket, Key=lock_key(self.project, self.env),
            Body=lease.to_json().encode(), ContentType="application/json", **condition,
        )
        return str(found["ETag"])

    def _try_create(self) -> bool:
        lease = self._new_lease()
        try:
            etag = self._put(lease, IfNoneMatch="*")
        except AwsError as err:
            if not is_conflict(err):
                raise
            # A retried create whose first attempt landed (its response was lost) conflicts
            # with itself: the lease there is then ours, to the millisecond.
            found = _read(self.project, self.env)
            if found is None or found[0] != lease:
                return False
            etag = found[1]
        self.lease, self._etag = lease, etag
        return True

    def _stale(self, held: Lease) -> str | None:
        """Why a held lease may be taken over, or None when it is in force."""
        if held.expired():
            return "expired"
        if held.host == this_host() and held.pid != os.getpid() and not process_alive(held.pid):
            return "dead process"
        return None

    def acquire(self) -> Lease:
        deadline = None if self.wait is None else time.monotonic() + self.wait
        races = 0  # lost between our create and our read, or to another taker-over
        while True:
            if self._try_create():
                assert self.lease is not None
                return self.lease
            found = _read(self.project, self.env)
            if found is None and races < TAKEOVER_ATTEMPTS:
                races += 1
                continue  # released between our create and our read
            if found is None:
                raise OperationFailed(f"the {self.env} lock keeps changing; retry")
            held, etag = found
            reason = self._stale(held)
            if reason is not None and races < TAKEOVER_ATTEMPTS:
                races += 1
                if reason == "dead process":
                    self.took_over = held
                    self.project.progress.warn(
                        f"taking over the {self.env} lock left by a process that is gone: "
                        f"{held.describe()}"
                    )
                else:
                    self.project.aws.log(f"taking over the expired {self.env} lock")
                _delete_if(self.project, self.env, etag, held)
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is None or remaining <= 0:
                raise self._locked(held)
            self.waited = True
            self.project.aws.sleep(min(remaining, random.uniform(*POLL_SECONDS)))  # noqa: S311

    def _locked(self, held: Lease) -> EnvironmentLocked:
        waited = f" (waited {self.wait:g}s)" if self.wait else ""
        return EnvironmentLocked(
            f"environment {self.env} is locked by {held.describe()}{waited}",
            hint=f"wait, or 'sdeliver unlock --env {self.env} --force'",
        )

    # -- while held ----------------------------------------------------------------------

    def renew(self) -> Lease:
        """Push the expiry out by another ttl; fails if the lease is no longer ours."""
        with self._writing:
            if self.lost is not None:
                raise self.lost
            if self.lease is None or self._etag is None:
                raise OperationFailed(f"renewing the {self.env} lock: it is not held")
            lease = Lease(
                **{**asdict(self.lease), "expires": iso(utc_now() + self.ttl, millis=True)}
            )
            try:
                self._etag = self._put(lease, IfMatch=self._etag)
            except AwsError as err:
                if not is_conflict(err) and error_code(err) not in GONE:
                    raise
                holder = inspect_lock(self.project, self.env)
                if holder is not None and holder[0] == lease:
                    # A retried renewal whose first attempt landed (its answer was lost):
                    # the lease there is the one we wrote, to the millisecond.
                    self.lease, self._etag = lease, holder[1]
                    return lease
                self.lease = self._etag = None
                self.lost = EnvironmentLocked(
                    f"lost the {self.env} lock"
                    + (f": now held by {holder[0].describe()}" if holder else ": it was removed"),
                    hint="another command took it over; check the environment with "
                    "'sdeliver status'",
                )
                raise self.lost from None
            self.lease = lease
            return lease

    def confirm(self) -> None:
        """Make sure the lease is still ours right before a ledger entry is written: a
        conditional renewal (If-Match our ETag), so a command whose lease was taken over
        stops instead of recording a release that no longer serves."""
        self.renew()

    def start_heartbeat(self, interval: float | None = None) -> None:
        """Renew the lease every `interval` seconds (a third of the ttl) until released."""
        every = interval if interval is not None else self.ttl.total_seconds() / HEARTBEAT_SHARE
        self._stop_heartbeat.clear()

        def beat() -> None:
            while not self._stop_heartbeat.wait(every):
                try:
                    self.renew()
                except EnvironmentLocked:
                    return  # `lost` says so; the next `confirm` stops the command
                except OperationFailed as err:  # AWS unreachable for now: try again later
                    self.project.aws.log(f"renewing the {self.env} lock: {err.message}")

        self._heartbeat = threading.Thread(
            target=beat, name=f"sdeliver-lease-{self.env}", daemon=True
        )
        self._heartbeat.start()

    def _stop_beating(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=30)
        self._heartbeat = None

    def release(self) -> None:
        """Remove our lease, never someone else's; safe to call more than once."""
        self._stop_beating()
        with self._writing:
            if self.lease is None or self._etag is None:
                return
            lease, etag = self.lease, self._etag
            self.lease = self._etag = None
        try:
            if not _delete_if(self.project, self.env, etag, lease):
                self.project.progress.warn(
                    f"the {self.env} lock was taken over while this command held it; "
                    "left the new holder's lease in place"
                )
        except OperationFailed as err:
            # Never mask the command's own outcome; the lease expires by itself.
            self.project.progress.warn(f"could not release the {self.env} lock: {err.message}")

    @property
    def held(self) -> bool:
        return self.lease is not None
