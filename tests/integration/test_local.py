"""The embedded default: `sdeliver local serve` and `--local`, driven as a user drives them."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.integration

STARTUP_LIMIT = 60  # seconds: a bound on waiting, not an assertion about speed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[str]
    endpoint: str
    gateway: str
    state: Path
    announced: str


def start_serve(directory: Path) -> Served:
    port, gateway_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sdeliver", "local", "serve",
         "--port", str(port), "--gateway-port", str(gateway_port)],
        cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    state = directory / ".sdeliver" / "local.json"
    deadline = time.monotonic() + STARTUP_LIMIT
    while not state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"local serve did not start: {process.communicate()}")
        time.sleep(0.1)
    assert process.stdout is not None
    announced = "".join(process.stdout.readline() for _ in range(3))
    document = json.loads(state.read_text(encoding="utf-8"))
    return Served(process, document["endpoint"], document["gateway"], state, announced)


def stop(served: Served, sig: int = signal.SIGTERM) -> int:
    served.process.send_signal(sig)
    try:
        return served.process.wait(timeout=STARTUP_LIMIT)
    finally:
        served.process.kill()
        served.process.communicate()


def serve_app(directory: Path) -> Served:
    """A new app (HTTPS hosting, its zone example.com) under a `local serve`."""
    run("new", f"local-{secrets.token_hex(3)}", "--dir", str(directory), cwd=directory.parent)
    return start_serve(directory)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `local serve` of a new app for the tests that only look at it."""
    served = serve_app(tmp_path_factory.mktemp("served") / "app")
    yield served
    stop(served)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Path, Served]]:
    directory = tmp_path / "app"
    served = serve_app(directory)
    yield directory, served
    if served.process.poll() is None:
        stop(served)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "sdeliver", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300, check=False,
    )
    assert done.returncode == 0, f"sdeliver {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return dict(json.load(response))


def test_local_serve_announces_its_endpoint_and_records_itself(served):
    assert f"export SDELIVER_ENDPOINT_URL={served.endpoint}\n" in served.announced
    assert json.loads(served.state.read_text())["pid"] == served.process.pid


def test_local_serve_answers_on_both_ports_and_creates_the_hosted_zone(served):
    route53 = boto3.client("route53", region_name="us-east-1", endpoint_url=served.endpoint)
    zones = [z["Name"] for z in route53.list_hosted_zones()["HostedZones"]]
    assert zones == ["example.com."]
    assert set(fetch_json(served.gateway + "/")["environments"]) == {"test", "prod"}


def test_local_commands_use_the_running_server(served, sdeliver):
    result = sdeliver("--local", "init", "--yes", cwd=served.state.parent.parent)
    assert result.code == 0, result.output
    assert "no 'sdeliver local serve'" not in result.output
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=served.endpoint)
    assert any(b["Name"].endswith("-artifacts-123456789012") for b in s3.list_buckets()["Buckets"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_local_serve_without_a_config_stops_cleanly_on_a_signal(tmp_path, sig):
    served = start_serve(tmp_path)
    assert fetch_json(served.gateway + "/")["app"] is None
    assert stop(served, sig) == 0
    assert not served.state.exists()


@pytest.mark.parametrize("option", ["--port", "--gateway-port"])
def test_local_serve_refuses_a_taken_port_in_one_line(tmp_path, option):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The other port is a free one, not the default, which something else may hold.
        other = "--gateway-port" if option == "--port" else "--port"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sdeliver", "local", "serve", option, str(port), other, str(free)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert f"port {port}" in done.stderr and "taken" in done.stderr
    assert not (tmp_path / ".sdeliver").exists()


def test_a_script_deploys_promotes_and_rolls_back_while_the_gateway_shows_each_change(serving):
    directory, served = serving
    env = {"SDELIVER_ENDPOINT_URL": served.endpoint}
    hello = served.gateway + "/{}/api/hello"
    run("init", "--yes", cwd=directory, env=env)
    run("deploy", "--env", "test", cwd=directory, env=env)
    assert fetch_json(hello.format("test"))["version"] == "v1"
    run("promote", "test->prod", "--yes", cwd=directory, env=env)
    app = directory / "app" / "app.py"
    app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    run("deploy", "--env", "test", cwd=directory, env=env)
    assert fetch_json(hello.format("test"))["version"] == "v2"
    assert fetch_json(hello.format("prod"))["version"] == "v1"
    run("rollback", "--alias", "test", "--yes", cwd=directory, env=env)
    assert fetch_json(hello.format("test"))["version"] == "v1"


def test_new_then_local_init_and_deploy_pass_their_own_e2e(sdeliver, tmp_path, monkeypatch):
    monkeypatch.setenv("SDELIVER_LOCAL_IDLE", "120")  # bounds a server a failure leaves
    directory = tmp_path / "app"
    assert sdeliver("new", f"e2e-{secrets.token_hex(3)}", "--dir", str(directory), cwd=tmp_path).code == 0
    try:
        init = sdeliver("--local", "init", "--yes", cwd=directory)
        assert init.code == 0, init.output
        assert "started the local emulator" in init.output
        deploy = sdeliver("--local", "deploy", "--env", "test", cwd=directory)
        assert deploy.code == 0, deploy.output
        assert "e2e passed" in deploy.output
        assert "started the local emulator" not in deploy.output  # the same one, reused
    finally:
        sdeliver("local", "stop", cwd=directory)


def readme_block(heading: str) -> list[str]:
    """The shell lines of the first ```sh block under `heading` in the README."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_the_readmes_own_app_lines_work_as_written_and_keep_their_state(tmp_path):
    local_lines = [line for line in readme_block("## Your own app") if "--local" in line
                   or line.startswith("sdeliver new")]
    commands = [line.split("#", 1)[0].strip() for line in local_lines]
    assert commands == [
        "sdeliver new shop && cd shop",
        "sdeliver --local init --yes",
        "sdeliver --local deploy --env test",
    ]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SDELIVER_LOCAL_IDLE": "120",  # a server a failure leaves stops by itself
    }
    env.pop("SDELIVER_ENDPOINT_URL", None)
    script = "set -e\n" + "\n".join(local_lines) + "\nsdeliver local status --json\n"
    shop = tmp_path / "shop"
    try:
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "e2e passed" in done.stderr
        status = json.loads(done.stdout[done.stdout.rindex("{\n"):])
        assert status["running"] and status["mode"] == "background"
        assert status["idle_timeout_seconds"] == 120
        assert "/test/api/hello" in (shop / ".sdeliver" / "gateway.log").read_text()
    finally:
        stopped = subprocess.run([sys.executable, "-m", "sdeliver", "local", "stop"], cwd=shop,
                                 env=env, capture_output=True, text=True, timeout=60, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the local emulator" in stopped.stderr
    after = subprocess.run([sys.executable, "-m", "sdeliver", "local", "status"], cwd=shop,
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    assert after.stdout == "no local emulator runs for this project\n"
    assert not (shop / ".sdeliver" / "local.json").exists()


def test_two_local_commands_starting_at_once_share_one_background_server(tmp_path, monkeypatch):
    import threading

    from sdeliver.local import background

    monkeypatch.setenv("SDELIVER_LOCAL_IDLE", "120")
    found: list[dict] = []
    starts: list[str] = []

    def start() -> None:
        found.append(background.ensure_server(tmp_path, tmp_path / "sdeliver.yaml", starts.append))

    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=STARTUP_LIMIT * 2)
        assert len(found) == 2 and found[0]["pid"] == found[1]["pid"]
        assert len(starts) == 1  # one won the lock and started it; the other reused it
        assert not (tmp_path / ".sdeliver" / "local.lock").exists()
    finally:
        assert background.stop_server(tmp_path) is not None
    assert background.describe(tmp_path) == {"running": False}


def test_a_background_server_stops_itself_when_idle(tmp_path, monkeypatch):
    from sdeliver.local import background

    monkeypatch.setenv("SDELIVER_LOCAL_IDLE", "1")
    running = background.ensure_server(tmp_path, tmp_path / "sdeliver.yaml")
    state = tmp_path / ".sdeliver" / "local.json"
    deadline = time.monotonic() + STARTUP_LIMIT
    while state.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not state.exists()  # it removed its record on the way out
    os.waitpid(running["pid"], 0)  # and exited (our child: reap it)
