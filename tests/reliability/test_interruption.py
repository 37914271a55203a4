"""Interruption: a command stopped after its k-th mutating call, then run again, completes
and leaves exactly the state an uninterrupted run leaves.

By default k is cut before the first write of each kind (every distinct step: the lease,
each AWS resource write, the ledger entry, ...) and before the first and the last write;
`python -m pytest -m exhaustive` cuts before every single write (about 75 cuts).

The stop is injected: a botocore before-call hook lets k writes through, then raises
`Crash` (a BaseException: no recovery code, no lock release, no further AWS call runs,
as under SIGKILL). The crashed command's lease names this live test process, so — as a
killed process's lease would — it is rewritten to name a pid that has exited; the re-run
then takes it over through the lock's dead-process rule (same host, pid gone). One sample
is a real SIGKILL of a CLI subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client
from tests.reliability.conftest import (
    APP,
    ARTIFACTS,
    WORKFLOW,
    Crash,
    Run,
    Tripwire,
    cut_points,
    differences,
    fresh_account,
    run_step,
    run_workflow,
    snapshot,
)

pytestmark = pytest.mark.integration

# The command cut, and the workflow steps that run before it.
COMMANDS = {"init": 0, "deploy": 1, "promote": 2, "rollback": 5}


def dead_pid() -> int:
    """A pid on this host whose process has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def orphan_leases(endpoint: str) -> None:
    """Make every lease left behind name a process that is gone, as after a SIGKILL."""
    s3 = client(endpoint, "s3")
    if ARTIFACTS not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return
    for item in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"sdeliver/{APP}/locks/").get("Contents", []):
        lease = json.loads(s3.get_object(Bucket=ARTIFACTS, Key=item["Key"])["Body"].read())
        assert lease["pid"] == os.getpid()
        lease["pid"] = dead_pid()
        s3.put_object(Bucket=ARTIFACTS, Key=item["Key"], Body=json.dumps(lease).encode())


def leases(endpoint: str) -> list[dict[str, Any]]:
    s3 = client(endpoint, "s3")
    found = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"sdeliver/{APP}/locks/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=ARTIFACTS, Key=o["Key"])["Body"].read()) for o in found]


def alive(lease: dict[str, Any]) -> bool:
    from sdeliver.lock import process_alive

    return bool(process_alive(int(lease["pid"])))


def interrupted_runs(
    command: str, sdeliver: Run, app_dir: Path, endpoint: str, tripwire: Tripwire,
    *, exhaustive: bool = False,
) -> tuple[int, list[str]]:
    """Cut `command` at each cut point; returns (how many cuts, what went wrong for which k)."""
    position = COMMANDS[command]
    setup, step = WORKFLOW[:position], WORKFLOW[position]

    def prepare() -> None:
        fresh_account(endpoint)
        tripwire.arm(None)
        run_workflow(sdeliver, app_dir, setup)

    prepare()
    tripwire.arm(None)
    assert run_step(sdeliver, app_dir, step).code == 0
    expected = snapshot(endpoint)
    cuts = cut_points(tripwire.kinds, exhaustive=exhaustive)
    failures: list[str] = []
    for k in cuts:
        prepare()
        tripwire.arm(k)
        with pytest.raises(Crash):
            run_step(sdeliver, app_dir, step)
        tripwire.arm(None)
        orphan_leases(endpoint)
        again = run_step(sdeliver, app_dir, step)
        if again.code != 0:
            failures.append(f"k={k}: re-run exit {again.code}: {again.output.strip()[-300:]}")
            continue
        state = snapshot(endpoint)
        # A re-run that finds the release already in place takes no lease, so the crashed
        # command's lease may stay; it names a dead pid, and the next command takes it over.
        found = differences({**state, "locks": []}, {**expected, "locks": []})
        found += [f"lease held by a live process: {lease}" for lease in leases(endpoint) if alive(lease)]
        if found:
            failures.append(f"k={k}: {found}")
    return len(cuts), failures




KNOWN: dict[str, str] = {}


def _commands() -> list[Any]:
    return [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN[c])) if c in KNOWN else c
        for c in COMMANDS
    ]


@pytest.mark.parametrize("command", _commands())
def test_a_command_cut_before_each_kind_of_write_completes_when_run_again(
    command: str, sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: Tripwire
) -> None:
    cuts, failures = interrupted_runs(command, sdeliver, app_dir, endpoint, tripwire)
    print(f"{command}: {cuts - len(failures)}/{cuts} interruptions recovered")
    assert cuts > 1
    assert failures == []


@pytest.mark.exhaustive
@pytest.mark.timeout(1200)  # init has ~40 writes: ~40 fresh inits, each cut and re-run
@pytest.mark.parametrize("command", _commands())
def test_a_command_cut_after_any_write_completes_when_run_again(
    command: str, sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: Tripwire
) -> None:
    cuts, failures = interrupted_runs(command, sdeliver, app_dir, endpoint, tripwire,
                                      exhaustive=True)
    print(f"{command}: {cuts - len(failures)}/{cuts} interruptions recovered")
    assert cuts > 0
    assert failures == []


def test_a_deploy_killed_by_sigkill_completes_when_run_again(
    sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tmp_path: Path, tripwire: Tripwire
) -> None:
    run_workflow(sdeliver, app_dir, WORKFLOW[:1])
    log = tmp_path / "calls.log"
    env = {**os.environ, "SDELIVER_ENDPOINT_URL": endpoint, "SDELIVER_CALL_LOG": str(log)}
    child = subprocess.Popen(
        [sys.executable, "-m", "sdeliver", "deploy", "--env", "test"],
        cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # Kill it once it holds the lease and has started moving things (wherever that is).
    while child.poll() is None and "s3 PutObject" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    again = sdeliver("deploy", "--env", "test", cwd=app_dir)
    assert again.code == 0, again.output
    state: dict[str, Any] = snapshot(endpoint)
    assert state["ledger"]["test"] == [(1, "deploy", "succeeded", state["stages"]["test"][1])]
    assert state["locks"] == []
