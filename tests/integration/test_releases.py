"""Releases through the real CLI against a moto server: deploy, promote, rollback, status,
history — with the e2e commands running over real HTTP through the local gateway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sdeliver.local.emulator import api_base

from tests.conftest import QUICK_BUILD, QUICK_E2E, client, quick_commands
from tests.integration.helpers import CallLog

pytestmark = pytest.mark.integration

FUNCTION = "dromedary-app"
BUCKETS = {"test": "test.dromedary.example.com", "prod": "dromedary.example.com"}
ARTIFACTS = "dromedary-artifacts-123456789012"


@pytest.fixture
def gateway(endpoint: str, project_dir: Path) -> Iterator[str]:
    """The local gateway over the moto server, found by in-process and subprocess CLIs."""
    from sdeliver.config import load_config
    from sdeliver.local.emulator import register_gateway, start_gateway, write_state

    gw = start_gateway(endpoint, lambda: load_config(project_dir / "sdeliver.yaml"))
    unregister = register_gateway(endpoint, gw.url)
    write_state(project_dir, endpoint, gw.url)  # as `sdeliver local serve` does, for subprocesses
    try:
        yield gw.url
    finally:
        unregister()
        gw.stop()


@pytest.fixture
def example_app(sdeliver, project_dir: Path, hosted_zone: str, gateway: str) -> Path:  # type: ignore[no-untyped-def]
    """The example, initialised, with its own build (pip) and e2e (pytest) commands."""
    result = sdeliver("init", "--yes", cwd=project_dir)
    assert result.code == 0, result.output
    return project_dir


@pytest.fixture
def app(sdeliver, project_dir: Path, hosted_zone: str, gateway: str) -> Path:  # type: ignore[no-untyped-def]
    """The example, initialised, with quick commands (the same e2e check, no pytest)."""
    quick_commands(project_dir)
    result = sdeliver("init", "--yes", cwd=project_dir)
    assert result.code == 0, result.output
    return project_dir


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CallLog:
    return CallLog(tmp_path / "calls.log", monkeypatch)


def set_version(project: Path, version: str) -> None:
    handler = project / "app" / "app.py"
    text = handler.read_text()
    handler.write_text("\n".join(
        f'VERSION = "{version}"' if line.startswith("VERSION = ") else line
        for line in text.splitlines()) + "\n")
    (project / "site" / "version.txt").write_text(version + "\n")


def set_e2e(project: Path, command: str) -> None:
    config = project / "sdeliver.yaml"
    config.write_text(config.read_text().replace(f"e2e: {QUICK_E2E}", f"e2e: {command}"))


def snapshot(endpoint: str) -> dict[str, Any]:
    """Every release pointer: alias versions, stage deployments, site bytes."""
    lam, apigw, s3 = client(endpoint, "lambda"), client(endpoint, "apigateway"), client(endpoint, "s3")
    api_id = next(a["id"] for a in apigw.get_rest_apis()["items"] if a["name"] == "dromedary")
    state: dict[str, Any] = {}
    for env, bucket in BUCKETS.items():
        alias = lam.get_alias(FunctionName=FUNCTION, Name=env)
        objects = {
            o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        }
        state[env] = {
            "version": alias["FunctionVersion"],
            "weights": (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {},
            "deployment": apigw.get_stage(restApiId=api_id, stageName=env)["deploymentId"],
            "site": objects,
            "config": json.loads(objects.get("config.json", b"{}")),
        }
    return state


def ledger(endpoint: str, env: str) -> list[dict[str, Any]]:
    s3 = client(endpoint, "s3")
    prefix = f"sdeliver/dromedary/releases/{env}/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=prefix).get("Contents", []))
    return [json.loads(s3.get_object(Bucket=ARTIFACTS, Key=k)["Body"].read()) for k in keys]


def served(gateway: str, env: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(f"{gateway}/{env}/api/hello", timeout=30) as response:
        return json.load(response)


def deploy(sdeliver, project: Path, *args: str):  # type: ignore[no-untyped-def]
    return sdeliver("deploy", "--json", *args, cwd=project)


def test_deploy_promote_deploy_promote_rollback(sdeliver, example_app: Path, endpoint: str, gateway: str) -> None:
    app = example_app
    site_files = {p.relative_to(app / "site").as_posix(): p.read_bytes()
                  for p in (app / "site").rglob("*") if p.is_file()}
    first = deploy(sdeliver, app)
    assert first.code == 0, first.output
    r1 = json.loads(first.stdout)
    # init published version 1 from the same sources: deploy reuses it, publishes nothing
    assert (r1["outcome"], r1["e2e"], r1["version"]) == ("succeeded", "passed", "1")
    after_first = snapshot(endpoint)
    assert after_first["test"]["version"] == "1" and after_first["prod"]["version"] == "1"
    assert after_first["test"]["deployment"] == r1["deployment_id"]
    assert {k: v for k, v in after_first["test"]["site"].items() if k != "config.json"} == site_files
    config = after_first["test"]["config"]
    assert config["title"] == "Dromedary" and config["env"] == "test"
    assert config["release"] == r1["release"]
    # The API answers on another origin than the site (localhost vs 127.0.0.1), as on AWS.
    assert config["apiBaseurl"] == f"{api_base(gateway)}/test/api/"
    assert served(gateway, "test")["version"] == "v1"

    promoted = sdeliver("promote", "test->prod", "--json", cwd=app)
    assert promoted.code == 0, promoted.output
    p1 = json.loads(promoted.stdout)
    after_promote = snapshot(endpoint)
    assert after_promote["prod"]["version"] == "1"
    assert after_promote["prod"]["deployment"] == r1["deployment_id"], "the same deployment"
    assert after_promote["prod"]["site"].keys() == after_promote["test"]["site"].keys()
    assert {k: v for k, v in after_promote["prod"]["site"].items() if k != "config.json"} == site_files
    assert after_promote["prod"]["config"]["env"] == "prod"
    assert after_promote["prod"]["config"]["release"] == r1["release"] == p1["release"]

    set_version(app, "v2")
    second = deploy(sdeliver, app)
    assert second.code == 0, second.output
    r2 = json.loads(second.stdout)
    assert r2["release"] != r1["release"] and r2["version"] == "2"
    assert served(gateway, "test")["version"] == "v2"
    assert served(gateway, "prod")["version"] == "v1"
    assert snapshot(endpoint)["test"]["site"]["version.txt"] == b"v2\n"

    assert sdeliver("promote", "test->prod", cwd=app).code == 0
    assert served(gateway, "prod")["version"] == "v2"

    back = sdeliver("rollback", "--alias", "prod", "--json", cwd=app)
    assert back.code == 0, back.output
    after_rollback = snapshot(endpoint)
    assert after_rollback["prod"] == after_promote["prod"], "byte for byte what prod ran before"
    assert served(gateway, "prod")["version"] == "v1"
    assert after_rollback["test"]["version"] == "2"

    assert [(e["seq"], e["action"], e["outcome"], e["release"]) for e in ledger(endpoint, "prod")] == [
        (1, "promote", "succeeded", r1["release"]),
        (2, "promote", "succeeded", r2["release"]),
        (3, "rollback", "succeeded", r1["release"]),
    ]
    assert ledger(endpoint, "prod")[2]["replaces"] == 2
    assert [e["action"] for e in ledger(endpoint, "test")] == ["deploy", "deploy"]

    status = json.loads(sdeliver("status", "--json", cwd=app).stdout)
    assert status["environments"]["prod"]["version"] == "1"
    assert status["environments"]["prod"]["release"] == r1["release"]
    assert status["environments"]["test"]["release"] == r2["release"]
    history = json.loads(sdeliver("history", "--env", "prod", "--json", cwd=app).stdout)
    assert [e["seq"] for e in history["entries"]] == [3, 2, 1]


def test_an_unchanged_deploy_makes_no_mutating_call(sdeliver, app: Path, calls: CallLog) -> None:
    assert deploy(sdeliver, app).code == 0
    calls.reset()
    again = deploy(sdeliver, app)
    assert again.code == 0, again.output
    assert json.loads(again.stdout)["outcome"] == "unchanged"
    assert calls.calls(), "the second deploy must have looked"
    assert calls.writes() == []


def test_deploy_force_repairs_a_site_file_changed_behind_its_back(sdeliver, app: Path, endpoint: str) -> None:
    assert deploy(sdeliver, app).code == 0
    s3 = client(endpoint, "s3")
    s3.put_object(Bucket=BUCKETS["test"], Key="index.html", Body=b"defaced")
    s3.delete_object(Bucket=BUCKETS["test"], Key="app.js")
    assert deploy(sdeliver, app).code == 0  # config.json names the release: left alone
    assert s3.get_object(Bucket=BUCKETS["test"], Key="index.html")["Body"].read() == b"defaced"
    forced = deploy(sdeliver, app, "--force")
    assert forced.code == 0, forced.output
    assert s3.get_object(Bucket=BUCKETS["test"], Key="index.html")["Body"].read() == (app / "site" / "index.html").read_bytes()
    assert s3.get_object(Bucket=BUCKETS["test"], Key="app.js")["Body"].read() == (app / "site" / "app.js").read_bytes()


def test_a_failing_e2e_puts_the_previous_release_back(sdeliver, app: Path, endpoint: str, gateway: str) -> None:
    assert deploy(sdeliver, app).code == 0
    before = snapshot(endpoint)
    set_version(app, "v2")
    set_e2e(app, "python -c 'raise SystemExit(1)'")
    failed = deploy(sdeliver, app)
    assert failed.code == 1
    result = json.loads(failed.stdout)
    assert (result["outcome"], result["e2e"]) == ("rolled-back", "failed")
    assert "the function's log: sdeliver --local logs --env test" in failed.stderr
    after = snapshot(endpoint)
    assert after["test"]["version"] == before["test"]["version"]
    assert after["test"]["deployment"] == before["test"]["deployment"]
    assert after["test"]["site"] == before["test"]["site"]
    assert served(gateway, "test")["version"] == "v1"
    assert [e["outcome"] for e in ledger(endpoint, "test")] == ["succeeded", "rolled-back"]


def test_no_rollback_keeps_a_release_whose_e2e_failed_and_refuses_to_promote_it(sdeliver, app: Path, gateway: str) -> None:
    set_e2e(app, "python -c 'raise SystemExit(1)'")
    kept = deploy(sdeliver, app, "--no-rollback")
    assert kept.code == 1
    assert json.loads(kept.stdout)["e2e"] == "failed"
    assert served(gateway, "test")["version"] == "v1"
    refused = sdeliver("promote", "test->prod", cwd=app)
    assert refused.code == 1
    assert "e2e failed" in refused.stderr


def test_a_failing_build_changes_nothing(sdeliver, app: Path, endpoint: str, calls: CallLog) -> None:
    before = snapshot(endpoint)
    config = app / "sdeliver.yaml"
    config.write_text(config.read_text().replace(
        QUICK_BUILD, "python -c 'raise SystemExit(3)'"))
    calls.reset()
    failed = sdeliver("deploy", cwd=app)
    assert failed.code == 1
    assert "build command failed (exit 3)" in failed.stderr
    assert calls.writes() == []
    assert snapshot(endpoint) == before
    assert ledger(endpoint, "test") == []


def test_a_locked_environment_exits_4_naming_the_holder(sdeliver, app: Path, endpoint: str) -> None:
    lease = {"owner": "arn:aws:iam::123456789012:user/ana", "host": "ci-7", "pid": 4121,
             "command": "deploy", "started": "2026-11-29T10:02:00Z", "expires": "2999-01-01T00:00:00Z"}
    client(endpoint, "s3").put_object(Bucket=ARTIFACTS, Key="sdeliver/dromedary/locks/test.json",
                                      Body=json.dumps(lease).encode())
    result = sdeliver("deploy", cwd=app)
    assert result.code == 4
    assert "user/ana" in result.stderr and "ci-7" in result.stderr
    assert ledger(endpoint, "test") == []


def test_two_deploys_at_once_one_runs_the_other_exits_4(app: Path, endpoint: str, gateway: str) -> None:
    set_e2e(app, "python -c 'import time; time.sleep(4)'")
    env = {**os.environ, "SDELIVER_ENDPOINT_URL": endpoint}
    procs = [subprocess.Popen([sys.executable, "-m", "sdeliver", "deploy"], cwd=app, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 4], outcomes
    locked = next(err for code, err in outcomes if code == 4)
    assert "is locked by" in locked
    assert [e["outcome"] for e in ledger(endpoint, "test")] == ["succeeded"]


def test_rollback_without_an_earlier_release_is_a_clear_error(sdeliver, app: Path) -> None:
    assert deploy(sdeliver, app).code == 0
    result = sdeliver("rollback", "--alias", "test", cwd=app)
    assert result.code == 1
    assert "no earlier release" in result.stderr


def test_rollback_dry_run_changes_nothing(sdeliver, app: Path, endpoint: str) -> None:
    assert deploy(sdeliver, app).code == 0
    set_version(app, "v2")
    assert deploy(sdeliver, app).code == 0
    before = snapshot(endpoint)
    planned = sdeliver("rollback", "--alias", "test", "--dry-run", "--json", cwd=app)
    assert planned.code == 0, planned.output
    document = json.loads(planned.stdout)
    assert document["from"]["seq"] == 2 and document["to"]["seq"] == 1
    assert snapshot(endpoint) == before


@pytest.mark.parametrize(("args", "message"), [
    (["test->test"], "to itself"),
    (["test->staging"], "unknown environment 'staging'"),
    (["prod->test"], "skips the declared order"),
    (["test"], "SOURCE->TARGET"),
])
def test_promote_refuses_bad_routes(sdeliver, project_dir: Path, endpoint: str, args: list[str], message: str) -> None:
    result = sdeliver("promote", *args, cwd=project_dir)
    assert result.code == 2
    assert message in result.stderr


def test_promote_refuses_a_source_without_a_release(sdeliver, app: Path) -> None:
    result = sdeliver("promote", "test", "prod", cwd=app)
    assert result.code == 1
    assert "test has no release to promote" in result.stderr


def _two_releases(sdeliver, app: Path) -> None:  # type: ignore[no-untyped-def]
    """prod runs v1; test runs v2."""
    assert deploy(sdeliver, app).code == 0
    assert sdeliver("promote", "test->prod", cwd=app).code == 0
    set_version(app, "v2")
    assert deploy(sdeliver, app).code == 0


def test_a_canary_shifts_traffic_in_steps_then_switches(sdeliver, app: Path, endpoint: str, gateway: str) -> None:
    _two_releases(sdeliver, app)
    result = sdeliver("promote", "test->prod", "--canary", "10", "--steps", "3", "--interval", "0",
                      "--json", cwd=app)
    assert result.code == 0, result.output
    entries = ledger(endpoint, "prod")
    canary = [e for e in entries if e["action"] == "canary"]
    assert [e["weights"] for e in canary] == [{"2": 0.1}, {"2": 0.55}]
    assert entries[-1]["action"] == "promote" and entries[-1]["outcome"] == "succeeded"
    after = snapshot(endpoint)["prod"]
    assert (after["version"], after["weights"]) == ("2", {})
    assert served(gateway, "prod")["version"] == "v2"


def test_a_failing_canary_puts_all_traffic_back(sdeliver, app: Path, endpoint: str, gateway: str) -> None:
    _two_releases(sdeliver, app)
    before = snapshot(endpoint)["prod"]
    set_e2e(app, "python -c 'raise SystemExit(1)'")
    result = sdeliver("promote", "test->prod", "--canary", "20", "--interval", "0", "--json", cwd=app)
    assert result.code == 1
    document = json.loads(result.stdout)
    assert document["outcome"] == "rolled-back"
    assert "canary stopped at 20 %" in document["message"]
    after = snapshot(endpoint)["prod"]
    assert (after["version"], after["weights"]) == (before["version"], {})
    assert after["deployment"] == before["deployment"] and after["site"] == before["site"]
    assert served(gateway, "prod")["version"] == "v1"
    assert [e["action"] for e in ledger(endpoint, "prod")] == ["promote", "canary", "promote"]
    assert ledger(endpoint, "prod")[-1]["outcome"] == "rolled-back"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_e2e_stops_it_puts_back_and_records(app: Path, endpoint: str, gateway: str, sig: int, code: int) -> None:
    first = subprocess.run([sys.executable, "-m", "sdeliver", "deploy"], cwd=app, capture_output=True,
                           text=True, env={**os.environ, "SDELIVER_ENDPOINT_URL": endpoint}, timeout=120)
    assert first.returncode == 0, first.stderr
    before = snapshot(endpoint)
    marker = app / "e2e.pid"
    # Written aside then renamed: the marker never exists empty (a signal may come at once).
    set_e2e(app, f"python -c \"import os, time; open('{marker}.new', 'w').write(str(os.getpid())); "
                 f"os.replace('{marker}.new', '{marker}'); time.sleep(120)\"")
    set_version(app, "v-signal")
    proc = subprocess.Popen([sys.executable, "-m", "sdeliver", "deploy"], cwd=app, text=True,
                            env={**os.environ, "SDELIVER_ENDPOINT_URL": endpoint},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted" in err and "put back on" in err
    e2e_pid = int(marker.read_text())
    stat = Path(f"/proc/{e2e_pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone (or a zombie)
    after = snapshot(endpoint)
    assert {env: (s["version"], s["deployment"]) for env, s in after.items()} == \
        {env: (s["version"], s["deployment"]) for env, s in before.items()}
    latest = ledger(endpoint, "test")[-1]
    assert latest["outcome"] == "failed" and "SIG" in latest["message"]
