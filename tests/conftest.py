"""Shared fixtures: a moto server on a loopback port, a sample project, the real CLI.

Integration tests drive `sdeliver` exactly as a user does, and every AWS call goes over
real HTTP through botocore to the moto server.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = Path(__file__).parent.parent / "config" / "sdeliver.example.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """moto in this process (mock_aws) imports MOCK integrations as AWS does: the emulator's
    workarounds (local/quirks.py), applied here because product code never patches moto."""
    from sdeliver.local.quirks import allow_mock_integrations, file_any_methods

    allow_mock_integrations()
    file_any_methods()
    # A shell without job control starts a background command with SIGINT ignored, and an
    # ignored signal stays ignored in every child: the Ctrl-C tests would wait in vain.
    # Ctrl-C means KeyboardInterrupt here and (reset on exec) default in the CLIs we start.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials: nothing here may ever reach a real AWS account."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "SDELIVER_ENDPOINT_URL",
        "SDELIVER_CALL_LOG",
        "SDELIVER_CALL_PARAMS_LOG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("SDELIVER_RETRY_MAX_SECONDS", "5")
    # A change whose apply makes other AWS write calls than its plan showed fails the test.
    monkeypatch.setenv("SDELIVER_STRICT_PLANS", "1")


@pytest.fixture(autouse=True)
def quick_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits between attempts take a fraction of their time (sdeliver's own retries, lease
    polling and the canary's interval a twentieth, botocore's backoff a fiftieth): the same
    attempts in the same order, without the seconds."""
    import time

    from botocore.retries.standard import ExponentialBackoff
    from sdeliver.aws import Aws

    monkeypatch.setattr(Aws, "sleep_default", lambda seconds: time.sleep(seconds / 20))
    delay = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, ctx: delay(self, ctx) / 50)


@contextlib.contextmanager
def loopback(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port answering with `handler`: its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    # sdeliver attaches no AWS-managed policy: loading moto's ~1,000 of them costs 2-3 s
    # per fresh account, so no test loads them unless it asks (`managed_policies`).
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "false"
    from moto.server import ThreadedMotoServer
    from sdeliver.local.quirks import _ignore_policy_conditions, allow_mock_integrations

    _ignore_policy_conditions()  # as `sdeliver local serve` does: see its docstring
    allow_mock_integrations()  # also for CLIs run as subprocesses against this server
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty account on the moto server for each test."""
    import urllib.request

    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=30).close()
    monkeypatch.setenv("SDELIVER_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def emulator(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """sdeliver's own emulator, as `local serve` runs it: moto plus what HTTPS hosting needs
    and moto lacks (local/edge.py), on the fresh account of `endpoint` (one moto per
    process), with the hosted zone example.com; SDELIVER_ENDPOINT_URL points at it."""
    from sdeliver.local.emulator import start_emulator

    server = start_emulator()
    client(server.endpoint, "route53").create_hosted_zone(
        Name="example.com", CallerReference="sdeliver-tests")
    monkeypatch.setenv("SDELIVER_ENDPOINT_URL", server.endpoint)
    try:
        yield server.endpoint
    finally:
        server.stop()


def client(endpoint: str, service: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint)


EXAMPLE_BUILD = "python -m pip install -r requirements.txt -t app/vendor --quiet"
EXAMPLE_E2E = "python -m pytest tests/e2e -q"
QUICK_BUILD = "python -c pass"
QUICK_E2E = "python tests/e2e/check.py"


def quick_commands(project: Path) -> Path:
    """The example's build and e2e commands made cheap: `pip install` (even of nothing)
    and a pytest subprocess per deploy cost seconds each; the same check as a plain script
    does not. One test keeps the example's own commands."""
    config = project / "sdeliver.yaml"
    text = config.read_text()
    assert EXAMPLE_BUILD in text and EXAMPLE_E2E in text
    config.write_text(text.replace(EXAMPLE_BUILD, QUICK_BUILD).replace(EXAMPLE_E2E, QUICK_E2E))
    return project


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """The shared example sdeliver.yaml, unchanged, beside a tiny app."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURES / "sample", target)
    shutil.copy(EXAMPLE, target / "sdeliver.yaml")
    return target


@pytest.fixture
def hosted_zone(endpoint: str) -> str:
    zone = client(endpoint, "route53").create_hosted_zone(
        Name="example.com", CallerReference="sdeliver-tests"
    )
    return str(zone["HostedZone"]["Id"])


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def sdeliver(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the real CLI in-process: `sdeliver("init", "--yes", cwd=dir)` -> Result."""
    from sdeliver.app import main

    def run(*args: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    """In-process moto for unit tests. AWS-managed IAM policies are not loaded: sdeliver
    attaches none, and loading them costs 2-3 s per test."""
    from moto import mock_aws

    with mock_aws(config={"iam": {"load_aws_managed_policies": False}}):
        yield


@pytest.fixture
def make_project(project_dir: Path, mocked_aws: None):  # type: ignore[no-untyped-def]
    """A `Project` over the sample project (or a config text), talking to in-process moto."""
    from sdeliver.aws import Aws
    from sdeliver.config import load_config
    from sdeliver.project import Project

    def make(config_text: str | None = None, *, zone: bool = True) -> Project:
        path = project_dir / "sdeliver.yaml"
        if config_text is not None:
            path.write_text(config_text, encoding="utf-8")
        config = load_config(path)
        aws = Aws(region=config.region)
        if zone and config.dns is not None:
            aws.call("route53", "create_hosted_zone", Name=config.dns.zone, CallerReference="t")
        return Project(config=config, aws=aws)

    return make


def provisioned(config_path: Path):  # type: ignore[no-untyped-def]
    """The app of `config_path` in the running in-process moto, with its hosted zone and
    everything `init` makes except the pipeline (artifacts, role, function, API, sites, DNS)."""
    import boto3
    from sdeliver.aws import Aws
    from sdeliver.config import load_config
    from sdeliver.project import Project
    from sdeliver.resources import api, artifacts, dns, function, iam, site

    config = load_config(config_path)
    project = Project(config=config, aws=Aws(region=config.region))
    boto3.client("route53", region_name="us-east-1").create_hosted_zone(
        Name="example.com", CallerReference="t")
    for kind in (artifacts, iam, function, api, site, dns):
        for change in kind.plan(project):
            if change.apply is not None:
                change.apply(project)
    return project
