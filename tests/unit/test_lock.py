"""The environment lock: one lease per environment in S3, taken with a conditional create."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from sdeliver.errors import EXIT_LOCKED, AwsError, EnvironmentLocked, OperationFailed
from sdeliver.ledger import iso, utc_now
from sdeliver.lock import (
    EnvironmentLock,
    Lease,
    UnreadableLease,
    force_unlock,
    inspect_lock,
    lock_key,
    read_lock,
    this_host,
)
from sdeliver.progress import Silent
from sdeliver.project import Project


@pytest.fixture
def project(make_project: Any) -> Project:
    project: Project = make_project()
    s3 = boto3.client("s3", region_name=project.region)
    s3.create_bucket(Bucket=project.artifact_bucket)
    s3.put_bucket_versioning(
        Bucket=project.artifact_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return project


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sdeliver.lock.POLL_SECONDS", (0.05, 0.1))


def plant(project: Project, env: str, **fields: Any) -> Lease:
    """A lease written by someone else, straight into S3."""
    now = utc_now()
    lease = Lease(
        **{
            "owner": "arn:aws:iam::123456789012:user/ana",
            "host": "ci-7",
            "pid": 4121,
            "command": "deploy",
            "started": iso(now),
            "expires": iso(now + timedelta(minutes=30)),
            **fields,
        }
    )
    boto3.client("s3", region_name=project.region).put_object(
        Bucket=project.artifact_bucket, Key=lock_key(project, env), Body=lease.to_json().encode()
    )
    return lease


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_lease_names_owner_host_pid_command_and_expiry(project: Project) -> None:
    with EnvironmentLock(project, "prod", "deploy"):
        held = read_lock(project, "prod")
    assert held is not None
    assert held.owner.startswith("arn:")
    assert held.host == this_host()
    assert held.command == "deploy"
    assert held.started.endswith("Z") and held.expires > held.started


def test_a_second_acquire_fails_naming_the_holder(project: Project) -> None:
    with EnvironmentLock(project, "prod", "deploy"), pytest.raises(EnvironmentLocked) as caught:
        EnvironmentLock(project, "prod", "rollback").acquire()
    message = str(caught.value)
    assert "environment prod is locked by arn:" in message
    assert f"deploy on host {this_host()}" in message
    assert "sdeliver unlock --env prod --force" in message
    assert caught.value.exit_code == EXIT_LOCKED


def test_a_racer_in_the_same_process_and_millisecond_is_refused(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two threads of one process write leases with the same owner, host, pid, command and
    # times; the loser of the conditional create must not take the winner's lease for the
    # answer to its own create (what a lost response looks like). CI caught two holders.
    frozen = utc_now()
    monkeypatch.setattr("sdeliver.lock.utc_now", lambda: frozen)
    with EnvironmentLock(project, "prod", "deploy") as first:
        assert first.lease is not None and first.lease.token
        with pytest.raises(EnvironmentLocked):
            EnvironmentLock(project, "prod", "deploy").acquire()


def test_a_lease_written_before_tokens_existed_is_read(project: Project) -> None:
    body = {k: v for k, v in plant(project, "prod").to_dict().items() if k != "token"}
    boto3.client("s3", region_name=project.region).put_object(
        Bucket=project.artifact_bucket, Key=lock_key(project, "prod"),
        Body=json.dumps(body).encode(),
    )
    held = read_lock(project, "prod")
    assert held is not None and held.owner.endswith("user/ana") and held.token == ""


def test_another_hosts_lease_is_reported_with_its_start_time(project: Project) -> None:
    plant(project, "prod", started="2026-11-29T10:02:00Z")
    with pytest.raises(EnvironmentLocked, match=r"user/ana \(deploy on host ci-7, pid 4121\) "
                       r"since 2026-11-29 10:02 UTC"):
        EnvironmentLock(project, "prod", "deploy").acquire()


def test_environments_are_locked_separately(project: Project) -> None:
    with EnvironmentLock(project, "prod", "deploy"), EnvironmentLock(project, "test", "deploy"):
        assert read_lock(project, "test") is not None


def test_the_lock_is_released_after_the_block(project: Project) -> None:
    with EnvironmentLock(project, "prod", "deploy"):
        pass
    assert read_lock(project, "prod") is None


def test_the_lock_is_released_when_the_block_raises(project: Project) -> None:
    with pytest.raises(RuntimeError), EnvironmentLock(project, "prod", "deploy"):
        raise RuntimeError("deploy failed")
    assert read_lock(project, "prod") is None


def test_an_expired_lease_is_taken_over(project: Project) -> None:
    long_ago = utc_now() - timedelta(hours=2)
    plant(project, "prod", started=iso(long_ago), expires=iso(long_ago + timedelta(minutes=30)))
    with EnvironmentLock(project, "prod", "deploy") as lock:
        held = read_lock(project, "prod")
        assert held is not None and held == lock.lease and held.pid != 4121


def test_a_lease_left_by_a_dead_process_on_this_host_is_taken_over_with_a_warning(
    project: Project,
) -> None:
    project.progress = Silent()
    plant(project, "prod", host=this_host(), pid=dead_pid())
    with EnvironmentLock(project, "prod", "deploy") as lock:
        assert lock.held
    assert any("process that is gone" in line for line in project.progress.lines)


def test_a_lease_of_a_process_on_another_host_is_not_taken_over(project: Project) -> None:
    # The pid means nothing here: that process lives on another machine.
    plant(project, "prod", host="ci-7", pid=dead_pid())
    with pytest.raises(EnvironmentLocked):
        EnvironmentLock(project, "prod", "deploy").acquire()


def test_waiting_acquires_once_the_holder_releases(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = EnvironmentLock(project, "prod", "deploy")
    holder.acquire()
    polled = threading.Event()
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        polled.set()  # the waiter found the lock held and is polling
        real_sleep(seconds)

    def release_once_polled() -> None:
        polled.wait(timeout=60)
        holder.release()

    monkeypatch.setattr(project.aws, "sleep", sleep)
    thread = threading.Thread(target=release_once_polled)
    thread.start()
    try:
        with EnvironmentLock(project, "prod", "rollback", wait=60):
            held = read_lock(project, "prod")
    finally:
        thread.join()
    assert polled.is_set()
    assert held is not None and held.command == "rollback"


def test_waiting_gives_up_when_the_time_runs_out(project: Project) -> None:
    plant(project, "prod")
    with pytest.raises(EnvironmentLocked, match="waited"):
        EnvironmentLock(project, "prod", "deploy", wait=0.2).acquire()


def test_force_unlock_removes_and_returns_the_holder(project: Project) -> None:
    planted = plant(project, "prod")
    assert force_unlock(project, "prod") == planted
    assert read_lock(project, "prod") is None


def test_force_unlock_of_an_unlocked_environment_returns_none(project: Project) -> None:
    assert force_unlock(project, "prod") is None


def put_lock_bytes(project: Project, env: str, body: bytes) -> None:
    boto3.client("s3", region_name=project.region).put_object(
        Bucket=project.artifact_bucket, Key=lock_key(project, env), Body=body
    )


def test_force_unlock_removes_an_unreadable_lease(project: Project) -> None:
    put_lock_bytes(project, "prod", b"{truncated")
    removed = force_unlock(project, "prod")
    assert isinstance(removed, UnreadableLease) and removed.raw == b"{truncated"
    with EnvironmentLock(project, "prod", "deploy"):
        pass


def test_an_unreadable_lock_is_shown_as_its_first_bytes_escaped(project: Project) -> None:
    put_lock_bytes(project, "prod", b"\x1b[31m\x00not a lease\n" + b"x" * 300)
    found = inspect_lock(project, "prod")
    assert found is not None
    held = found[0]
    assert isinstance(held, UnreadableLease) and lock_key(project, "prod") in held.where
    shown = held.describe()
    assert shown.startswith("an unreadable lease (Expecting value: line 1 column 1 (char 0))")
    assert "\\x1b[31m\\x00not a lease\\nxxx" in shown and "(118 more bytes)" in shown
    assert "\x1b" not in shown and "\x00" not in shown and "\n" not in shown


def test_a_lease_with_a_time_that_is_not_a_time_is_unreadable_not_a_crash(
    project: Project,
) -> None:
    plant(project, "prod", expires="tomorrow")
    with pytest.raises(OperationFailed, match=r"is unreadable: .*tomorrow"):
        read_lock(project, "prod")
    assert isinstance(force_unlock(project, "prod"), UnreadableLease)
    assert inspect_lock(project, "prod") is None


def test_force_unlock_leaves_a_lock_that_changed_since_it_was_shown(project: Project) -> None:
    put_lock_bytes(project, "prod", b"garbage")
    found = inspect_lock(project, "prod")
    assert found is not None
    planted = plant(project, "prod")  # a real lease arrives while the user reads the prompt
    with pytest.raises(OperationFailed, match="changed since it was shown: now arn:"):
        force_unlock(project, "prod", shown=found[0])
    assert read_lock(project, "prod") == planted


def test_without_conditional_deletes_an_unreadable_lock_is_still_removed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_lock_bytes(project, "prod", b"garbage")
    real_call = project.aws.call

    def call(service: str, operation: str, **kwargs: Any) -> Any:
        if operation == "delete_object" and "IfMatch" in kwargs:
            raise AwsError("conditional deletes are not supported", code="NotImplemented")
        return real_call(service, operation, **kwargs)

    monkeypatch.setattr(project.aws, "call", call)
    assert isinstance(force_unlock(project, "prod"), UnreadableLease)
    assert inspect_lock(project, "prod") is None


def test_unlock_force_prints_an_unreadable_locks_bytes_then_removes_it(
    project: Project, project_dir: Path, sdeliver: Any
) -> None:
    put_lock_bytes(project, "prod", b"\x1b]0;owned\x07{half a lease")
    result = sdeliver("unlock", "--env", "prod", "--force", "--yes", cwd=project_dir)
    assert result.code == 0, result.output
    text = " ".join(result.stderr.split())
    shown = text.index("prod is locked by an unreadable lease")
    assert "\\x1b]0;owned\\x07{half a lease" in text and "\x1b" not in result.stderr
    assert shown < text.index("prod: lease removed")
    assert inspect_lock(project, "prod") is None


def test_unlock_without_force_shows_an_unreadable_lock_and_keeps_it(
    project: Project, project_dir: Path, sdeliver: Any
) -> None:
    put_lock_bytes(project, "prod", b"garbage")
    result = sdeliver("--json", "unlock", "--env", "prod", cwd=project_dir)
    assert result.code == 2
    assert "unreadable lease" in result.stderr and "garbage" in result.stderr
    assert inspect_lock(project, "prod") is not None


def test_releasing_leaves_a_lease_that_someone_else_took_over(project: Project) -> None:
    project.progress = Silent()
    first = EnvironmentLock(project, "prod", "deploy")
    first.acquire()
    force_unlock(project, "prod")
    second = plant(project, "prod")
    first.release()
    assert read_lock(project, "prod") == second
    assert any("taken over" in line for line in project.progress.lines)


def test_renew_extends_the_expiry(project: Project) -> None:
    with EnvironmentLock(project, "prod", "deploy", ttl=timedelta(minutes=1)) as lock:
        before = read_lock(project, "prod")
        lock.ttl = timedelta(hours=1)
        renewed = lock.renew()
        after = read_lock(project, "prod")
    assert before is not None and after == renewed
    assert after.expires > before.expires
    assert read_lock(project, "prod") is None, "a renewed lease is still released"


def test_renewing_a_lease_that_was_taken_over_fails(project: Project) -> None:
    lock = EnvironmentLock(project, "prod", "deploy")
    lock.acquire()
    force_unlock(project, "prod")
    plant(project, "prod")
    with pytest.raises(EnvironmentLocked, match="lost the prod lock: now held by arn:"):
        lock.renew()


def test_a_409_conditional_conflict_counts_as_locked(project: Project) -> None:
    # AWS answers 409 while another conditional write of the lease is in flight (moto never
    # does): the lock is contended, and the holder is then read.
    project.aws.caller_arn  # noqa: B018 - resolve the identity before stubbing S3
    body = plant(project, "prod").to_json().encode()
    with Stubber(project.aws.client("s3")) as stubber:
        stubber.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
        for _ in range(2):  # is it our own lease (a lost answer)? then: who holds it?
            stubber.add_response(
                "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"e"'}
            )
        with pytest.raises(EnvironmentLocked, match="user/ana"):
            EnvironmentLock(project, "prod", "deploy").acquire()
