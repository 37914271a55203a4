"""What the reliability tests share: a quick project, the release workflow, a snapshot.

The project is the shared example without its e2e and build commands: those run
subprocesses, and what these tests prove is about AWS state, not about the app's tests.
The snapshot is every release-relevant resource, normalised so that two runs on two fresh
accounts compare equal when they did the same thing (random ids are replaced by what they
stand for: the REST API id by "API", a deployment id by the release it was made for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sdeliver.aws import Aws, is_write

from tests.conftest import client
from tests.reliability.faultproxy import name_operations

APP = "dromedary"
FUNCTION = "dromedary-app"
ARTIFACTS = "dromedary-artifacts-123456789012"
SITES = {"test": "test.dromedary.example.com", "prod": "dromedary.example.com"}


class Crash(BaseException):
    """The process died here, as under SIGKILL: nothing after it runs, no cleanup calls AWS.

    A BaseException, so neither the operations' `except SdeliverError` recovery nor the
    CLI's last-resort `except Exception` handles it."""


def write_kind(operation: str, params: dict[str, Any] | None) -> str:
    """What a write is, for choosing where to cut: the operation, and for S3 what it
    writes (a lease, a ledger entry, a release artifact, a site file, bucket settings)."""
    path = str((params or {}).get("url_path") or "")
    if not path.startswith("/") or operation not in ("PutObject", "DeleteObject", "DeleteObjects",
                                                     "CopyObject"):
        return operation
    for area in ("/locks/", "/releases/", "/artifacts/", "/packages/", "/pipeline/"):
        if area in path:
            return f"{operation} {area.strip('/')}"
    return f"{operation} {'config.json' if path.endswith('/config.json') else 'site'}"


class Tripwire:
    """A botocore before-call hook: after `after` mutating calls, every further call dies.

    It also records what each write was (`kinds`), so a sweep can cut before the first
    write of every kind instead of before every write."""

    def __init__(self) -> None:
        self.after: int | None = None
        self.writes = 0
        self.crashed = False
        self.interrupt = False
        self.kinds: list[str] = []

    def arm(self, after: int | None, *, interrupt: bool = False) -> None:
        """interrupt: at the cut, raise KeyboardInterrupt once (Ctrl-C: the command's own
        clean-up runs and may call AWS) instead of dying there (SIGKILL)."""
        self.after, self.writes, self.crashed, self.kinds = after, 0, False, []
        self.interrupt = interrupt

    def __call__(self, model: Any, params: dict[str, Any] | None = None, **_: Any) -> None:
        if self.crashed:
            raise Crash(model.name)
        if not is_write(model.name):
            return
        if self.after is not None and self.writes >= self.after:
            if self.interrupt:
                self.after = None
                raise KeyboardInterrupt(model.name)
            self.crashed = True
            raise Crash(model.name)
        self.writes += 1
        self.kinds.append(write_kind(model.name, params))


def cut_points(kinds: list[str], *, exhaustive: bool = False) -> list[int]:
    """Where to cut a command whose writes were `kinds` (k: after the first k writes).

    Exhaustive: before every write. Otherwise before the first write of each kind, plus
    the first and the last write: every distinct step the command takes is interrupted,
    and a sweep costs a handful of runs, not one per write."""
    if exhaustive:
        return list(range(len(kinds)))
    firsts = {kinds.index(kind) for kind in kinds}
    return sorted(firsts | ({0, len(kinds) - 1} if kinds else set()))


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """Every client sdeliver creates counts its writes here and names its operations for
    the fault proxy (botocore's backoff is scaled down for every test: `quick_waits`)."""
    wire = Tripwire()
    original = Aws.client

    def instrumented(self: Aws, service: str) -> Any:
        found = original(self, service)
        name_operations(found)
        found.meta.events.register("before-call.*.*", wire, unique_id="sdeliver-tripwire")
        return found

    monkeypatch.setattr(Aws, "client", instrumented)
    return wire


def fresh_account(endpoint: str) -> None:
    """Empty the moto server and create the hosted zone again, as the fixtures do."""
    import urllib.request

    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=30).close()
    client(endpoint, "route53").create_hosted_zone(Name="example.com", CallerReference="sdeliver-tests")


@pytest.fixture
def app_dir(project_dir: Path) -> Path:
    config = project_dir / "sdeliver.yaml"
    lines = config.read_text().splitlines()
    kept = [
        line for line in lines
        if not line.lstrip().startswith(("e2e:", "- python -m pip", "build:", "commands:"))
    ]
    config.write_text("\n".join(kept) + "\n")
    return project_dir


def set_app_version(project: Path, version: str) -> None:
    """Change the function's code (a new release), as a developer's commit would."""
    source = project / "app" / "app.py"
    text = re.sub(r'VERSION = "[^"]*"', f'VERSION = "{version}"', source.read_text())
    source.write_text(text)


Run = Callable[..., Any]

# The release workflow, one command per step: each one is what an interruption test cuts.
WORKFLOW: list[tuple[str, tuple[str, ...], str | None]] = [
    ("init", ("init", "--yes"), "v1"),
    ("deploy", ("deploy", "--env", "test"), "v1"),
    ("promote", ("promote", "test->prod"), None),
    ("deploy", ("deploy", "--env", "test"), "v2"),
    ("promote", ("promote", "test->prod"), None),
    ("rollback", ("rollback", "--env", "prod"), None),
]


def run_step(sdeliver: Run, cwd: Path, step: tuple[str, tuple[str, ...], str | None]) -> Any:
    _, args, version = step
    if version is not None:
        set_app_version(cwd, version)
    return sdeliver(*args, cwd=cwd)


def run_workflow(sdeliver: Run, cwd: Path, steps: list[Any] | None = None) -> None:
    for step in WORKFLOW if steps is None else steps:
        result = run_step(sdeliver, cwd, step)
        assert result.code == 0, (step, result.output)


_REFERENCE: dict[str, Any] = {}


def reference_snapshot(sdeliver: Run, cwd: Path, endpoint: str) -> dict[str, Any]:
    """The state the workflow leaves without faults (computed once), on a fresh account after."""
    if "workflow" not in _REFERENCE:
        run_workflow(sdeliver, cwd)
        _REFERENCE["workflow"] = snapshot(endpoint)
        fresh_account(endpoint)
    return _REFERENCE["workflow"]


# -- the snapshot ----------------------------------------------------------------------


def _ledger(s3: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for env in SITES:
        prefix = f"sdeliver/{APP}/releases/{env}/"
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS, Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        found[env] = [json.loads(s3.get_object(Bucket=ARTIFACTS, Key=k)["Body"].read()) for k in sorted(keys)]
    return found


def ledger_entries(endpoint: str) -> dict[str, list[dict[str, Any]]]:
    """Every ledger entry of every environment, oldest first (empty before init)."""
    s3 = client(endpoint, "s3")
    if ARTIFACTS not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return {env: [] for env in SITES}
    return _ledger(s3)


def snapshot(endpoint: str) -> dict[str, Any]:
    """Every release-relevant resource, with random ids replaced by what they stand for."""
    lam, apigw, s3 = client(endpoint, "lambda"), client(endpoint, "apigateway"), client(endpoint, "s3")
    fn = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    config = {k: fn.get(k) for k in ("Runtime", "Handler", "MemorySize", "Timeout", "Role", "CodeSha256", "Environment")}
    aliases = {
        a["Name"]: (a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
        for a in lam.list_aliases(FunctionName=FUNCTION)["Aliases"]
    }
    versions = {
        v["Version"]: v["CodeSha256"]
        for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
        if v["Version"] != "$LATEST"
    }
    ledger = _ledger(s3)
    api = next(a for a in apigw.get_rest_apis()["items"] if a["name"] == APP)
    served = {
        e["api_deployment_id"]: e["release"]
        for entries in ledger.values() for e in entries if e.get("api_deployment_id")
    }
    stages = {
        s["stageName"]: (s.get("variables"), served.get(s.get("deploymentId"), "(no release)"))
        for s in apigw.get_stages(restApiId=api["id"])["item"]
    }
    routes = sorted(
        (r["path"], tuple(sorted(r.get("resourceMethods", {}))))
        for r in apigw.get_resources(restApiId=api["id"])["items"]
    )
    sites = {}
    for env, bucket in SITES.items():
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        sites[env] = {
            o["Key"]: _normalise(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode(), api["id"])
            for o in objects
        }
    return {
        "function": config,
        "versions": versions,
        "aliases": aliases,
        "stages": stages,
        "routes": routes,
        "sites": sites,
        "ledger": {env: moves(entries) for env, entries in ledger.items()},
        "locks": sorted(
            o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"sdeliver/{APP}/locks/").get("Contents", [])
        ),
    }


def _normalise(text: str, api_id: str) -> str:
    """A site file without what differs between two accounts or two build times."""
    text = text.replace(api_id, "API")
    text = re.sub(r"http://127\.0\.0\.1:\d+", "ENDPOINT", text)
    return re.sub(r'"version": "\d{8}-\d{6}"', '"version": "BUILD-TIME"', text)


def moves(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A ledger as its (seq, action, outcome, release) moves."""
    return [(e["seq"], e["action"], e["outcome"], e["release"]) for e in entries]


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two snapshots differ, one line per leaf: for readable assertion messages."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found = []
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual or key not in expected:
                found.append(f"{path}/{key}: only in {'expected' if key in expected else 'actual'}")
            else:
                found += differences(actual[key], expected[key], f"{path}/{key}")
        return found
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]
