"""Concurrency: release commands racing on one environment take turns through its lease.

Each racer is a thread with its own Project and AWS clients, calling the operation the
command calls (all in one process: the lease's dead-process rule can never apply, so a
held lease is always in force). Every lease hold is logged between the conditional
create and the delete, so two holders at once would show as overlapping holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import EXIT_LOCKED, EnvironmentLocked
from sdeliver.lock import EnvironmentLock
from sdeliver.operations.deploy import deploy
from sdeliver.operations.rollback import rollback
from sdeliver.project import Project

from tests.reliability.conftest import WORKFLOW, Run, ledger_entries, run_workflow

pytestmark = pytest.mark.integration


class Holds:
    """Who holds which environment's lease, in the order it happened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        enter, leave = EnvironmentLock.__enter__, EnvironmentLock.__exit__

        def entered(lock: EnvironmentLock) -> EnvironmentLock:
            got = enter(lock)
            self._log("held", lock.env)
            return got

        def left(lock: EnvironmentLock, *exc: Any) -> None:
            self._log("released", lock.env)
            leave(lock, *exc)

        monkeypatch.setattr(EnvironmentLock, "__enter__", entered)
        monkeypatch.setattr(EnvironmentLock, "__exit__", left)

    def _log(self, what: str, env: str) -> None:
        with self._lock:
            self.events.append((what, env, threading.get_ident()))

    def most_at_once(self, env: str) -> int:
        holders: set[int] = set()
        most = 0
        for what, where, who in self.events:
            if where != env:
                continue
            if what == "held":
                holders.add(who)
            else:
                holders.discard(who)
            most = max(most, len(holders))
        return most


@pytest.fixture
def holds(monkeypatch: pytest.MonkeyPatch) -> Holds:
    return Holds(monkeypatch)


@pytest.fixture
def deployed(sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str) -> Path:
    run_workflow(sdeliver, app_dir, WORKFLOW[:3])
    return app_dir


def race(count: int, app_dir: Path, endpoint: str, work: Callable[[Project], Any]) -> list[Any]:
    """Run `work` in `count` threads released at once; each one's result or exception."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def racer(i: int) -> None:
        project = Project(config=load_config(app_dir / "sdeliver.yaml"), aws=Aws(region="us-east-1", endpoint_url=endpoint))
        project.aws.identity()  # warm the clients so the racers meet at the lease
        start.wait()
        try:
            results[i] = work(project)
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def assert_ledger_whole(endpoint: str, env: str, releases: int) -> None:
    entries = ledger_entries(endpoint)[env]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) == releases


@pytest.mark.parametrize("count", [2, 5])
def test_racing_deploys_take_turns_and_the_losers_exit_4(count: int, deployed: Path, endpoint: str, holds: Holds) -> None:
    before = len(ledger_entries(endpoint)["test"])
    results = race(count, deployed, endpoint, lambda p: deploy(p, "test", force=True))
    done = [r for r in results if not isinstance(r, Exception)]
    locked = [r for r in results if isinstance(r, EnvironmentLocked)]
    assert len(done) + len(locked) == count, results
    assert done and all(r.outcome == "succeeded" for r in done)
    assert all(err.exit_code == EXIT_LOCKED and "is locked by" in err.message for err in locked)
    assert holds.most_at_once("test") == 1
    assert_ledger_whole(endpoint, "test", before + len(done))


def test_racing_deploys_that_wait_all_succeed_one_after_another(deployed: Path, endpoint: str, holds: Holds) -> None:
    before = len(ledger_entries(endpoint)["test"])
    results = race(5, deployed, endpoint, lambda p: deploy(p, "test", force=True, wait=120))
    assert all(not isinstance(r, Exception) and r.outcome == "succeeded" for r in results), results
    assert holds.most_at_once("test") == 1
    assert_ledger_whole(endpoint, "test", before + 5)


def test_racing_rollbacks_and_deploys_keep_every_entry(sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, holds: Holds) -> None:
    run_workflow(sdeliver, app_dir, WORKFLOW[:5])
    before = len(ledger_entries(endpoint)["prod"])

    def work(i: int) -> Callable[[Project], Any]:
        if i % 2:
            return lambda p: rollback(p, "prod", wait=120)
        return lambda p: deploy(p, "prod", force=True, wait=120)

    counter = iter(range(5))
    lock = threading.Lock()

    def one(project: Project) -> Any:
        with lock:
            i = next(counter)
        return work(i)(project)

    results = race(5, app_dir, endpoint, one)
    failures = [r for r in results if isinstance(r, Exception)]
    assert holds.most_at_once("prod") == 1
    assert_ledger_whole(endpoint, "prod", before + 5 - len(failures))
    assert not [f for f in failures if isinstance(f, EnvironmentLocked)]
