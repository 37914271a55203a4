"""Waiting for CloudFront (minutes on AWS): progress lines while a distribution deploys,
`init`/`reconcile --no-wait` to go on without waiting, and `status` saying when it is done.
In-process moto (its distributions go InProgress -> Deployed as moto's state manager says)
plus tests/unit/edge_fake.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_api import state_manager
from sdeliver.operations import reconcile
from sdeliver.resources import cdn

from .edge_fake import EdgeFake, keep_distribution_fields
from .test_cloudfront import PROD, TEST, cloudfront_config, distribution_of

MODEL = "cloudfront::distribution"


@pytest.fixture
def deploying() -> Iterator[None]:
    """Distributions stay InProgress for many looks (moto counts describes, not time)."""
    state_manager.set_transition(MODEL, {"progression": "manual", "times": 1000})
    yield
    state_manager.unset_transition(MODEL)


def finish_deploying() -> None:
    from moto.cloudfront.models import cloudfront_backends

    for dist in cloudfront_backends["123456789012"]["global"].distributions.values():
        dist.status = "Deployed"


def test_waiting_for_a_distribution_says_how_long_so_far_until_it_deploys(  # type: ignore[no-untyped-def]
    make_project, monkeypatch
) -> None:
    keep_distribution_fields(monkeypatch)
    monkeypatch.setattr(cdn, "SAY_EVERY", 0.0)  # a line at every look
    state_manager.set_transition(MODEL, {"progression": "manual", "times": 3})
    try:
        project = make_project(cloudfront_config())
        EdgeFake().install(project.aws)
        reconcile.apply(project, reconcile.plan(project))
    finally:
        state_manager.unset_transition(MODEL)

    said = [line for line in project.progress.lines if ": InProgress, " in line]
    assert said and all(line.startswith("CloudFront distribution ") and "so far" in line
                        for line in said)
    for name in (TEST, PROD):
        dist = distribution_of(name)
        found = boto3.client("cloudfront").get_distribution(Id=dist["Id"])
        assert found["Distribution"]["Status"] == "Deployed"


@pytest.fixture
def cli_edge(monkeypatch: pytest.MonkeyPatch) -> EdgeFake:
    """The CLI's own project, with EdgeFake on its clients."""
    from sdeliver.context import Globals

    keep_distribution_fields(monkeypatch)
    fake = EdgeFake()
    made = Globals.project

    def project(self: Globals, config: Any = None) -> Any:
        found = made(self, config)
        fake.install(found.aws)
        return found

    monkeypatch.setattr(Globals, "project", project)
    return fake


def test_no_wait_goes_on_while_the_distribution_deploys_and_status_says_when_it_is_done(  # type: ignore[no-untyped-def]
    sdeliver, project_dir: Path, mocked_aws, cli_edge, deploying
) -> None:
    (project_dir / "sdeliver.yaml").write_text(cloudfront_config())
    boto3.client("route53").create_hosted_zone(Name="example.com", CallerReference="t")

    done = sdeliver("reconcile", "--yes", "--no-wait", cwd=project_dir)

    assert done.code == 0, done.output
    assert "not waiting for CloudFront to deploy distribution" in done.output
    assert not [line for line in done.output.splitlines()
                if line.strip().startswith("waiting for CloudFront to deploy")]
    acm = boto3.client("acm", region_name="us-east-1")
    for cert in acm.list_certificates()["CertificateSummaryList"]:  # never skipped
        assert acm.describe_certificate(CertificateArn=cert["CertificateArn"])[
            "Certificate"]["Status"] == "ISSUED"
    for name in (TEST, PROD):  # what follows the distribution was made without waiting
        assert distribution_of(name)["DistributionConfig"]["Aliases"]["Items"] == [name]

    shown = sdeliver("status", cwd=project_dir)
    assert shown.code == 0, shown.output
    assert "test: CloudFront distribution" in shown.output
    assert "is still deploying (InProgress)" in shown.output
    document = json.loads(sdeliver("--json", "status", cwd=project_dir).stdout)
    dist = document["environments"]["test"]["distribution"]
    assert dist["status"] == "InProgress" and dist["id"] == distribution_of(TEST)["Id"]

    finish_deploying()
    shown = sdeliver("status", cwd=project_dir)
    assert f"test: CloudFront distribution {dist['id']} deployed" in shown.output
    assert "still deploying" not in shown.output
    document = json.loads(sdeliver("--json", "status", cwd=project_dir).stdout)
    assert document["environments"]["prod"]["distribution"]["status"] == "Deployed"


def test_init_takes_no_wait_too(sdeliver, project_dir: Path, mocked_aws, cli_edge, deploying) -> None:  # type: ignore[no-untyped-def]
    (project_dir / "sdeliver.yaml").write_text(cloudfront_config())
    boto3.client("route53").create_hosted_zone(Name="example.com", CallerReference="t")

    done = sdeliver("init", "--yes", "--no-wait", cwd=project_dir)

    assert done.code == 0, done.output
    assert done.output.count("not waiting for CloudFront to deploy distribution") == 2


def test_status_of_an_s3_website_app_says_nothing_of_cloudfront(sdeliver, project_dir: Path, mocked_aws) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.local.emulator import _ignore_policy_conditions

    _ignore_policy_conditions()  # moto would apply aws:SecureTransport to its own plain HTTP
    boto3.client("route53").create_hosted_zone(Name="example.com", CallerReference="t")
    done = sdeliver("reconcile", "--yes", "--skip", "pipeline", cwd=project_dir)
    assert done.code == 0, done.output

    document = json.loads(sdeliver("--json", "status", cwd=project_dir).stdout)

    assert "distribution" not in document["environments"]["test"]
    assert "CloudFront" not in sdeliver("status", cwd=project_dir).output
