"""The demo: the whole delivery story on this machine, narrated and checked.

In a temporary directory it scaffolds the sample app (HTTPS hosting: a CloudFront
distribution per environment, each release's site under its own prefix, switched in one
write) and, against an in-process emulator and local gateway: init, deploy to test (e2e over
real HTTP), promote test->prod, change the app, deploy and promote again, roll prod back —
checking after each step what the gateway serves and what the ledger says. It passes only
if every check held.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..config import Config, load_config
from ..endpoints import env_urls, register_gateway, use_dummy_credentials
from ..errors import SdeliverError
from ..local.emulator import ensure_hosted_zone, start_emulator, start_gateway
from ..progress import Progress
from ..project import Project
from ..resources import cdn
from ..scaffold import scaffold, templates
from . import deploy as deploy_op
from . import promote as promote_op
from . import reconcile
from . import rollback as rollback_op
from .result import ReleaseResult
from .status import history, status

APP = "demo-app"


@dataclass
class Check:
    step: str
    what: str
    ok: bool
    detail: str = ""


@dataclass
class DemoReport:
    directory: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "directory": self.directory,
            "checks": [c.__dict__ for c in self.checks],
        }


def fetch_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            return json.load(response)
    except (urllib.error.URLError, ValueError, OSError) as err:
        return {"error": str(err)}


def scaffold_app(target: Path) -> None:
    """The sample app, its e2e run by this very interpreter (pytest need not be installed)."""

    scaffold(templates().joinpath("python-api"), target, APP)
    config = target / "sdeliver.yaml"
    e2e = f"{shlex.quote(sys.executable)} tests/e2e/test_app.py"
    config.write_text(
        config.read_text().replace("python tests/e2e/test_app.py", e2e), encoding="utf-8"
    )


def set_version(target: Path, version: str) -> None:
    handler = target / "app" / "app.py"
    lines = [
        f'VERSION = "{version}"' if line.startswith("VERSION = ") else line
        for line in handler.read_text().splitlines()
    ]
    handler.write_text("\n".join(lines) + "\n")


@dataclass
class _Story:
    """The demo's world (the app's directory, the emulator, the gateway) and its steps, each
    a method that acts and checks what serves afterwards."""

    target: Path
    endpoint: str
    gateway: str
    config: Config
    progress: Progress
    report: DemoReport
    show: Callable[[str, Any], None] | None

    def check(self, step: str, what: str, ok: bool, detail: str = "") -> None:
        self.report.checks.append(Check(step, what, ok, detail))
        mark = "ok  " if ok else "FAIL"
        self.progress.detail(f"[{mark}] {what}" + (f" ({detail})" if detail and not ok else ""))
        if not ok:
            self.progress.warn(f"check failed: {what}: {detail}")

    def project(self) -> Project:
        """A fresh project each step, as each command of a user makes its own."""
        fresh = load_config(self.target / "sdeliver.yaml")
        aws = Aws(region=fresh.region, endpoint_url=self.endpoint, log=self.progress.detail)
        return Project(config=fresh, aws=aws, progress=self.progress)

    def served(self, env: str) -> Any:
        return fetch_json(env_urls(self.gateway, self.config, env)[0] + "hello")

    def site_config(self, env: str) -> Any:
        return fetch_json(env_urls(self.gateway, self.config, env)[1] + "config.json")

    def serves(self, step: str, env: str, version: str) -> None:
        found = self.served(env)
        self.check(step, f"{env} serves {version}", found.get("version") == version, str(found))

    def after(self, p: Project, envs: tuple[str, ...] = ("test", "prod")) -> None:
        if self.show is not None:
            self.show("status", status(p))
            for env in envs:
                self.show("history", {"env": env, **history(p, env, 5)})

    # -- the steps --------------------------------------------------------------------------

    def init(self) -> None:
        self.progress.step(f"1/6 init: provision {APP} in the emulator ({self.endpoint})")
        p = self.project()
        plan = reconcile.plan(p)
        reconcile.apply(p, plan)
        self.check("init", "init creates every declared resource", bool(plan.pending))
        self.check("init", "a second init changes nothing",
                   reconcile.plan(self.project()).converged)
        if cdn.is_cloudfront(p):
            self.check("init", "each environment has its HTTPS distribution (certificate, "
                       "private bucket, /api/ on the site's origin)",
                       all(cdn.distribution(p, env) for env in cdn.envs(p)))

    def deploy_v1(self) -> ReleaseResult:
        self.progress.step("2/6 deploy test: build, publish, run e2e against the local gateway")
        first = deploy_op.deploy(p := self.project(), "test")
        self.check("deploy", "deploy to test succeeds with e2e passing", first.ok,
                   f"{first.outcome}, e2e {first.e2e}")
        self.serves("deploy", "test", "v1")
        self.after(p, ("test",))
        return first

    def promote_v1(self, first: ReleaseResult) -> None:
        self.progress.step("3/6 promote test->prod: the same version, deployment and site")
        promoted = promote_op.promote(p := self.project(), "test", "prod")
        self.check("promote", "promote succeeds", promoted.ok, promoted.outcome)
        self.check("promote", "prod runs the release test runs",
                   promoted.release == first.release and promoted.version == first.version)
        self.serves("promote", "prod", "v1")
        shown = self.site_config("prod")
        self.check("promote", "prod's config.json names prod and the release",
                   shown.get("env") == "prod" and shown.get("release") == first.release,
                   str(shown))
        self.after(p)

    def deploy_v2(self) -> None:
        self.progress.step("4/6 change the app to v2 and deploy test")
        set_version(self.target, "v2")
        second = deploy_op.deploy(self.project(), "test")
        self.check("deploy v2", "deploy of v2 succeeds", second.ok, second.outcome)
        self.serves("deploy v2", "test", "v2")
        self.check("deploy v2", "prod still serves v1",
                   self.served("prod").get("version") == "v1", str(self.served("prod")))
        unchanged = deploy_op.deploy(self.project(), "test")
        self.check("deploy v2", "deploying the same sources again changes nothing",
                   unchanged.outcome == "unchanged", unchanged.outcome)

    def promote_v2(self) -> None:
        self.progress.step("5/6 promote test->prod again")
        again = promote_op.promote(p := self.project(), "test", "prod")
        self.check("promote v2", "promote of v2 succeeds", again.ok, again.outcome)
        self.serves("promote v2", "prod", "v2")
        self.after(p)

    def rollback(self, first: ReleaseResult) -> None:
        self.progress.step("6/6 rollback prod: back to the previous release, as the ledger says")
        back = rollback_op.rollback(p := self.project(), "prod")
        self.check("rollback", "rollback succeeds", back.ok, back.outcome)
        self.check("rollback", "prod serves v1 again",
                   self.served("prod").get("version") == "v1", str(self.served("prod")))
        shown = self.site_config("prod")
        self.check("rollback", "prod's config.json is v1's release again",
                   shown.get("release") == first.release, str(shown))
        if cdn.is_cloudfront(p):
            live = cdn.live_release(p, "prod")
            self.check("rollback",
                       "prod's distribution serves v1's release: one pointer moved back",
                       live == first.release, str(live))
        self.check("rollback", "test still serves v2", self.served("test").get("version") == "v2")
        self.after(p)


def run_demo(
    progress: Progress,
    *,
    directory: Path | None = None,
    show: Callable[[str, Any], None] | None = None,
    prepare: Callable[[Path], None] | None = None,
) -> DemoReport:
    """Run the story; `show(kind, data)` renders status and history between steps."""
    workdir = directory or Path(tempfile.mkdtemp(prefix="sdeliver-demo-"))
    target = workdir / APP
    report = DemoReport(str(target))
    scaffold_app(target)
    if prepare is not None:
        prepare(target)
    restore_env = use_dummy_credentials()
    emulator = start_emulator()
    config = load_config(target / "sdeliver.yaml")
    gateway = start_gateway(emulator.endpoint, lambda: config)
    unregister = register_gateway(emulator.endpoint, gateway.url)
    ensure_hosted_zone(emulator.endpoint, config)  # the zone its domains live in
    story = _Story(target, emulator.endpoint, gateway.url, config, progress, report, show)
    try:
        story.init()
        first = story.deploy_v1()
        story.promote_v1(first)
        story.deploy_v2()
        story.promote_v2()
        story.rollback(first)
    except SdeliverError as err:
        story.check("demo", "every step ran", False, err.message)
    finally:
        unregister()
        gateway.stop()
        emulator.stop()
        restore_env()
    return report
