"""Releases of a CloudFront-hosted app through the real deploy, promote and rollback: the
retention of release sites in the bucket. In-process moto plus tests/unit/edge_fake.py."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from sdeliver import hosting
from sdeliver.errors import AwsError, EnvironmentLocked
from sdeliver.ledger import Ledger
from sdeliver.lock import EnvironmentLock
from sdeliver.operations import deploy as steps
from sdeliver.operations import reconcile
from sdeliver.operations.promote import promote
from sdeliver.operations.rollback import rollback
from sdeliver.project import Project

from .edge_fake import EdgeFake, keep_distribution_fields
from .test_cloudfront import TEST, cloudfront_config

QUICK = {
    "python -m pip install -r requirements.txt -t app/vendor --quiet": "python -c pass",
    "e2e: python -m pytest tests/e2e -q": "e2e: python -c pass",
}


def quick_config(retention: int | None = None) -> str:
    text = cloudfront_config()
    for slow, quick in QUICK.items():
        text = text.replace(slow, quick)
    if retention is not None:
        text = text.replace("site:\n", f"site:\n  retention: {retention}\n", 1)
    return text


@pytest.fixture
def edge(monkeypatch: pytest.MonkeyPatch) -> EdgeFake:
    from sdeliver.local.emulator import _ignore_policy_conditions

    _ignore_policy_conditions()  # moto would apply aws:SecureTransport to its own plain HTTP
    keep_distribution_fields(monkeypatch)
    return EdgeFake()


def cloudfront_app(make_project: Any, fake: EdgeFake, retention: int | None = None) -> Project:
    """The example app, hosted by CloudFront, provisioned as `init` does."""
    project = make_project(quick_config(retention))
    fake.install(project.aws)
    reconcile.apply(project, reconcile.plan(project))
    return project  # type: ignore[no-any-return]


class Site:
    """Changes the app's site between releases: each deploy is a new release."""

    def __init__(self, project: Project) -> None:
        self.dir = project.config.project_dir / "site"
        self.n = 0

    def next(self) -> None:
        self.n += 1
        (self.dir / "index.html").write_text(f"<html>release {self.n}</html>\n")


def held(bucket: str) -> set[str]:
    """The releases whose site the bucket holds (any object under releases/<id>/)."""
    found = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="releases/")
    return {o["Key"].split("/")[1] for o in found.get("Contents", [])}


def deployed(project: Project, site: Site, env: str = "test") -> str:
    site.next()
    result = steps.deploy(project, env)
    assert result.outcome == "succeeded", result
    return str(result.release)


def test_retention_keeps_the_newest_release_sites_and_removes_the_rest(make_project, edge) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=2)
    site = Site(project)
    releases = [deployed(project, site) for _ in range(4)]

    assert held(TEST) == set(releases[2:])
    assert edge.live("dromedary-test-release") == releases[3]
    assert any("removed the sites of 1 older release(s) of test" in line
               for line in project.progress.lines)


def test_the_default_retention_is_ten_and_at_least_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.config import parse_config
    from sdeliver.errors import ConfigError

    config = parse_config(quick_config(), tmp_path / "sdeliver.yaml")
    assert config.site is not None and config.site.retention == 10
    with pytest.raises(ConfigError, match="retention"):
        parse_config(quick_config(retention=0), tmp_path / "sdeliver.yaml")


def test_a_rollback_to_a_removed_release_uploads_it_again_and_keeps_the_one_it_left(make_project, edge) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=2)
    site = Site(project)
    r1, r2, r3 = (deployed(project, site) for _ in range(3))
    assert held(TEST) == {r2, r3}

    assert rollback(project, "test").release == r2  # its site is there: nothing uploaded
    assert held(TEST) == {r2, r3}  # r3: what edges may still serve for a few seconds
    assert rollback(project, "test").release == r1  # removed: uploaded again from artifacts/

    assert edge.live("dromedary-test-release") == r1
    assert held(TEST) == {r1, r2}
    index = boto3.client("s3").get_object(Bucket=TEST, Key=f"releases/{r1}/index.html")
    assert index["Body"].read() == b"<html>release 1</html>\n"


def test_promote_prunes_the_target_bucket_by_its_own_history(make_project, edge) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=2)
    site = Site(project)
    prod = project.site_bucket("prod")
    promoted = []
    for _ in range(3):
        deployed(project, site)
        promoted.append(str(promote(project, "test", "prod").release))

    assert held(prod) == set(promoted[1:])
    assert edge.live("dromedary-prod-release") == promoted[2]


def test_the_live_release_is_never_removed_whatever_keep_says(make_project, edge) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=5)
    site = Site(project)
    r1, r2 = (deployed(project, site) for _ in range(2))

    removed = hosting.prune(project, "test", [r1, r2], keep=[])

    assert removed == [r1] and held(TEST) == {r2}


def test_a_prune_that_fails_warns_and_the_release_stands(make_project, edge) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=1)
    site = Site(project)
    r1 = deployed(project, site)

    def refuse(**_: Any) -> None:
        raise AwsError("s3.delete_objects on releases: AccessDenied", code="AccessDenied")

    project.aws.client("s3").meta.events.register("before-call.s3.DeleteObjects", refuse)
    r2 = deployed(project, site)
    r3 = deployed(project, site)

    assert edge.live("dromedary-test-release") == r3
    entry = Ledger(project, "test").current()
    assert entry is not None and entry.release == r3 and entry.outcome == "succeeded"
    assert held(TEST) == {r1, r2, r3}
    assert any(line.startswith("warning: could not remove old site releases of test")
               for line in project.progress.lines)


def test_nothing_is_removed_once_the_lease_is_no_longer_ours(make_project, edge, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = cloudfront_app(make_project, edge, retention=1)
    site = Site(project)
    r1 = deployed(project, site)
    listed = []
    listing = hosting.release_prefixes

    def release_prefixes(*args: Any) -> list[str]:
        listed.append(True)
        return listing(*args)

    confirm = EnvironmentLock.confirm

    def taken_over(self: EnvironmentLock) -> None:
        if listed:  # the entry is recorded: now another command holds the lease
            raise EnvironmentLocked("test is locked by someone else")
        confirm(self)

    monkeypatch.setattr(hosting, "release_prefixes", release_prefixes)
    monkeypatch.setattr(EnvironmentLock, "confirm", taken_over)
    r2 = deployed(project, site)

    assert listed and held(TEST) == {r1, r2}
    assert any("could not remove old site releases of test" in line
               for line in project.progress.lines)
