"""The background emulator's idle clock, its setting, and status when nothing runs."""

from __future__ import annotations

import json

import pytest
from sdeliver.errors import UsageError
from sdeliver.local import background


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_activity_expires_only_after_the_idle_timeout_without_a_touch():
    clock = Clock()
    activity = background.Activity(clock)
    clock.now += 29
    assert not activity.expired(30)
    activity.touch()
    clock.now += 29
    assert not activity.expired(30)
    clock.now += 1
    assert activity.expired(30) and activity.idle_for() == 30
    assert not activity.expired(0)  # 0: a foreground `local serve` never idles out


def test_the_idle_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SDELIVER_LOCAL_IDLE", raising=False)
    assert background.idle_timeout() == 30 * 60
    monkeypatch.setenv("SDELIVER_LOCAL_IDLE", "2.5")
    assert background.idle_timeout() == 2.5
    for bad in ("soon", "0"):
        monkeypatch.setenv("SDELIVER_LOCAL_IDLE", bad)
        with pytest.raises(UsageError):
            background.idle_timeout()


def test_status_and_stop_when_nothing_runs_say_so(tmp_path, sdeliver):
    (tmp_path / ".sdeliver").mkdir()
    # A record left by a server that died (pid 2**22 + 1 does not exist) is stale.
    (tmp_path / ".sdeliver" / "local.json").write_text(
        json.dumps({"endpoint": "http://127.0.0.1:9", "gateway": "http://127.0.0.1:9",
                    "pid": 2**22 + 1})
    )
    assert json.loads(sdeliver("--json", "local", "status", cwd=tmp_path).stdout) == {
        "running": False
    }
    stopped = sdeliver("local", "stop", cwd=tmp_path)
    assert stopped.code == 0 and "nothing to stop" in stopped.output
    assert not (tmp_path / ".sdeliver" / "local.json").exists()


def test_a_lock_whose_holder_died_is_stale(tmp_path):
    lock = tmp_path / "local.lock"
    lock.write_text(f"{2**22 + 1}\n")
    assert not background._take_lock(lock)  # removes the stale one ...
    assert background._take_lock(lock)  # ... so the next attempt wins
    assert not background._take_lock(lock)  # and a live holder (us) keeps it


def test_the_local_extra_installs_only_the_emulators_services() -> None:
    # moto[server] brings every service's dependencies (cfn-lint, sympy, docker, ...):
    # 334 MB installed against 174 MB with only what the emulator serves.
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    local = pyproject["project"]["optional-dependencies"]["local"]
    moto = next(r for r in local if r.startswith("moto["))
    extras = set(moto[len("moto["):moto.index("]")].split(","))
    assert extras == {"apigateway", "s3"}
    assert {r.split("!")[0].split(">")[0] for r in local} >= {"flask", "flask-cors"}
