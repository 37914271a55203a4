"""The move transaction (operations/moves.py): what serves is recorded first, the lease is
kept alive and confirmed before each entry, a lost site is seen, and every failure —
promote's and rollback's too — is put back and recorded (issue 11, items 1-4).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.errors import EnvironmentLocked, Interrupted, OperationFailed
from sdeliver.ledger import Ledger
from sdeliver.lock import EnvironmentLock, lock_key, read_lock
from sdeliver.operations import deploy as steps
from sdeliver.operations.moves import Move, disagreements, read_live
from sdeliver.operations.promote import promote
from sdeliver.operations.rollback import rollback
from sdeliver.operations.status import environment_status
from sdeliver.project import Project
from sdeliver.resources import site
from sdeliver.shell import run_command

from tests.unit.test_deploy_steps import app, aws  # noqa: F401 - the same provisioned app

TEST_SITE = "test.dromedary.example.com"


def new_code(project_dir: Path, version: str) -> None:
    (project_dir / "app" / "app.py").write_text(f"def handler(e, c):\n    return {{'v': '{version}'}}\n")


@pytest.fixture
def two_releases(app: Project, project_dir: Path) -> Project:
    """test: r1 then r2 (deployed); prod: r1 (promoted)."""
    steps.deploy(app, "test")
    promote(app, "test", "prod")
    new_code(project_dir, "2")
    steps.deploy(app, "test")
    return app


def s3() -> Any:
    return boto3.client("s3", region_name="us-east-1")


# -- item 1: pointers moved without a record are recorded first --------------------------


def test_pointers_moved_behind_the_ledger_are_recorded_before_the_next_move(two_releases: Project) -> None:
    project = two_releases
    ledger = Ledger(project, "test")
    r2 = ledger.current()
    assert r2 is not None
    apigw = boto3.client("apigateway", region_name="us-east-1")
    api_id = next(a["id"] for a in apigw.get_rest_apis()["items"] if a["name"] == project.api_name)
    by_hand = apigw.create_deployment(restApiId=api_id, description="by hand")["id"]
    apigw.update_stage(restApiId=api_id, stageName="test", patchOperations=[
        {"op": "replace", "path": "/deploymentId", "value": by_hand}])

    doc = environment_status(project, "test")
    assert doc["in_sync"] is False and f"stage on deployment {by_hand}" in doc["drift"][0]
    assert doc["live"]["stage"] is None  # no sdeliver release made that deployment

    result = rollback(project, "test")

    entries = Ledger(project, "test").entries()
    found = entries[1]
    assert (found.action, found.api_deployment_id, found.replaces) == ("drifted", by_hand, r2.seq)
    assert entries[0].action == "rollback" and result.outcome == "succeeded"
    assert environment_status(project, "test")["in_sync"] is True


def test_a_re_run_of_its_own_cut_short_move_records_nothing_extra(two_releases: Project, project_dir: Path) -> None:
    project = two_releases
    new_code(project_dir, "3")
    built = steps.build(project)
    # The alias already moved to the new release's version, as a deploy killed later would leave it.
    store = steps.ReleaseStore(project)
    store.store(built)
    version = steps.publish_version(project, built, store)
    boto3.client("lambda", region_name="us-east-1").update_alias(
        FunctionName=project.function_name, Name="test", FunctionVersion=version)
    before = len(Ledger(project, "test").entries())

    steps.deploy(project, "test")

    entries = Ledger(project, "test").entries()
    assert len(entries) == before + 1 and entries[0].action == "deploy"


# -- item 2: the lease is renewed, and confirmed before each entry ------------------------


def test_the_heartbeat_renews_the_lease_while_the_command_runs(app: Project) -> None:
    lock = EnvironmentLock(app, "test", "deploy", ttl=timedelta(minutes=30))
    lock.acquire()
    first = read_lock(app, "test")
    lock.start_heartbeat(interval=0.05)
    try:
        deadline = time.monotonic() + 30
        while read_lock(app, "test") == first and time.monotonic() < deadline:
            time.sleep(0.05)
        renewed = read_lock(app, "test")
    finally:
        lock.release()
    assert first is not None and renewed is not None
    assert renewed.expires > first.expires and renewed.token == first.token


def test_a_command_whose_lease_was_taken_over_records_nothing(two_releases: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project = two_releases
    before = len(Ledger(project, "test").entries())

    def taken_over(*_: Any, **__: Any) -> str:
        # Another command broke the lease (expired) and holds its own now.
        s3().put_object(Bucket=project.artifact_bucket, Key=lock_key(project, "test"),
                        Body=json.dumps({"owner": "arn:aws:iam::1:user/bo", "host": "ci", "pid": 1,
                                         "command": "deploy", "started": "2026-11-30T00:00:00Z",
                                         "expires": "2999-01-01T00:00:00Z", "token": "x"}).encode())
        return "passed"

    monkeypatch.setattr(steps, "run_e2e", taken_over)
    # An e2e takes longer than an early confirmation stays fresh.
    monkeypatch.setattr("sdeliver.operations.moves.CONFIRM_FRESH", 0.0)
    new_code(Path(project.config.project_dir), "3")
    with pytest.raises(EnvironmentLocked, match="lost the test lock: now held by arn:aws:iam::1:user/bo"):
        steps.deploy(project, "test")
    assert len(Ledger(project, "test").entries()) == before  # no "succeeded" for a release that may not serve
    assert read_lock(project, "test").owner == "arn:aws:iam::1:user/bo"  # type: ignore[union-attr]


# -- item 3: a promote whose e2e fails and whose restore fails is recorded -----------------


def test_a_promote_whose_e2e_and_restore_fail_is_recorded(two_releases: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdeliver.operations.promote as promote_op

    project = two_releases
    monkeypatch.setattr(promote_op, "run_e2e", lambda *_a, **_k: "failed")

    def broken(*_: Any, **__: Any) -> None:
        raise OperationFailed("the restore failed too")

    monkeypatch.setattr(promote_op, "restore", broken)
    result = promote(project, "test", "prod")
    latest = Ledger(project, "prod").latest()
    assert latest is not None and latest.seq == result.seq
    assert (latest.outcome, latest.e2e) == ("failed", "failed")
    assert "could not restore prod" in (latest.message or "")


def test_any_error_during_a_promote_is_put_back_and_recorded(two_releases: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdeliver.operations.promote as promote_op

    project = two_releases
    before = read_live(project, "prod").pointers

    def cut(*_: Any, **__: Any) -> None:
        raise ValueError("a stream cut short")

    monkeypatch.setattr(promote_op, "publish_site", cut)
    with pytest.raises(ValueError):
        promote(project, "test", "prod")
    latest = Ledger(project, "prod").latest()
    assert latest is not None and latest.outcome == "failed" and "ValueError" in (latest.message or "")
    assert read_live(project, "prod").pointers.version == before.version


def test_ctrl_c_during_a_rollback_puts_back_records_and_says_so(two_releases: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdeliver.operations.rollback as rollback_op

    project = two_releases

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rollback_op, "publish_site", interrupted)
    with pytest.raises(Interrupted) as stopped:
        rollback(project, "test")
    assert stopped.value.exit_code == 130
    assert "put back on" in stopped.value.message
    latest = Ledger(project, "test").latest()
    assert latest is not None and latest.outcome == "failed" and "interrupted" in (latest.message or "")
    assert environment_status(project, "test")["in_sync"] is True


# -- item 4: a lost site is seen, published again, never overwritten by reconcile ----------


def test_a_deleted_config_json_shows_in_status_and_deploy_publishes_it_again(two_releases: Project) -> None:
    project = two_releases
    s3().delete_object(Bucket=TEST_SITE, Key="config.json")
    assert "site has no config.json" in environment_status(project, "test")["drift"][0]

    result = steps.deploy(project, "test")

    assert result.outcome != "unchanged"
    config = json.loads(s3().get_object(Bucket=TEST_SITE, Key="config.json")["Body"].read())
    assert config["release"] == result.release and config["apiBaseurl"]


def test_reconcile_never_writes_an_initial_config_json_over_an_environment_with_releases(two_releases: Project) -> None:
    project = two_releases
    s3().delete_object(Bucket=TEST_SITE, Key="config.json")
    changes = [c for c in site.plan(project) if c.name == TEST_SITE]
    assert changes[0].action == "none"
    assert any("has no config.json" in line for line in project.progress.lines)  # type: ignore[attr-defined]


def test_a_live_site_disagreeing_with_the_ledger_is_a_difference(two_releases: Project) -> None:
    project = two_releases
    current = Ledger(project, "test").current()
    live = read_live(project, "test")
    assert disagreements(live, current) == []
    s3().put_object(Bucket=TEST_SITE, Key="config.json", Body=b'{"release": "r-000000000000"}')
    [difference] = disagreements(read_live(project, "test"), current)
    assert difference.pointer == "site" and "r-000000000000" in difference.text


# -- timeouts and process groups -------------------------------------------------------------


def test_a_command_that_outlasts_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    from sdeliver.progress import Silent

    marker = tmp_path / "child.pid"
    script = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    status = run_command(f"{sys.executable} -c \"{script}\" & wait", cwd=tmp_path,
                         progress=Silent(), timeout=1)
    assert status == 124
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def test_an_interrupted_command_stops_its_process_group(tmp_path: Path) -> None:
    from sdeliver.progress import Silent

    marker = tmp_path / "child.pid"
    script = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    main = threading.main_thread()
    assert threading.current_thread() is main

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_command(f"{sys.executable} -c \"{script}\"", cwd=tmp_path, progress=Silent())
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    found = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip()) and not found.stdout.strip().startswith("Z")


def test_move_entered_twice_is_refused_while_held(app: Project) -> None:
    steps.deploy(app, "test")
    with Move(app, "test", "deploy"), pytest.raises(EnvironmentLocked):
        Move(app, "test", "rollback").__enter__()


def test_a_second_ctrl_c_while_putting_back_stops_at_once_and_says_what_to_run(two_releases: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdeliver.operations.rollback as rollback_op

    project = two_releases

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rollback_op, "publish_site", interrupted)  # the first Ctrl-C
    monkeypatch.setattr(rollback_op, "put_back", interrupted)  # the second, while putting back
    with pytest.raises(Interrupted) as stopped:
        rollback(project, "test")
    assert stopped.value.exit_code == 130
    assert "interrupted again while putting test back" in stopped.value.message
    assert "sdeliver status" in str(stopped.value.hint) and "sdeliver rollback --env test" in str(stopped.value.hint)
    assert read_lock(project, "test") is None  # the lease is released all the same


def test_a_timeout_stops_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    from sdeliver.progress import Silent

    marker = tmp_path / "child.pid"
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    started = time.monotonic()
    status = run_command(f"{sys.executable} -c \"{script}\"; echo done", cwd=tmp_path,
                         progress=Silent(), timeout=1)
    assert status == 124
    assert time.monotonic() - started < 30  # SIGKILLed after the grace, not after 60 s
    assert not _alive(int(marker.read_text()))


def test_a_re_run_that_fails_puts_back_what_the_ledger_served_not_the_half_move(
    two_releases: Project, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = two_releases
    r2 = Ledger(project, "test").current()
    assert r2 is not None
    new_code(project_dir, "3")
    built = steps.build(project)
    store = steps.ReleaseStore(project)
    store.store(built)
    version = steps.publish_version(project, built, store)
    # A deploy of r3 killed right after moving the alias: the alias is on r3's version.
    boto3.client("lambda", region_name="us-east-1").update_alias(
        FunctionName=project.function_name, Name="test", FunctionVersion=version)
    monkeypatch.setattr(steps, "run_e2e", lambda *_a, **_k: "failed")

    result = steps.deploy(project, "test")

    assert result.outcome == "rolled-back"
    assert read_live(project, "test").pointers.version == r2.lambda_version  # not r3's
    assert environment_status(project, "test")["in_sync"] is True


def test_a_canarys_last_switch_does_not_send_the_revision_its_own_steps_replaced(
    two_releases: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each canary step's UpdateAlias gives the alias a new RevisionId (AWS checks it; moto
    does not): the switch at 100 % must not send the one read before the first step."""
    import sdeliver.operations.promote as promote_op
    from sdeliver.operations.promote import Canary

    project = two_releases
    sent: list[tuple[str, str | None]] = []
    real = promote_op.move_alias

    def recording(p: Project, env: str, version: str, **kwargs: Any) -> None:
        sent.append((version, kwargs.get("revision_id")))
        real(p, env, version, **kwargs)

    monkeypatch.setattr(promote_op, "move_alias", recording)
    result = promote(project, "test", "prod", canary=Canary(percent=10, steps=2, interval=0))
    assert result.outcome == "succeeded", result
    assert sent[-1] == (result.version, None)
