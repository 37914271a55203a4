"""HTTPS hosting (`site.hosting: cloudfront`): certificate, distribution, OAC, private bucket
and aliases reconciled like the rest; releases under their own prefixes, switched in one
write. In-process moto, plus tests/unit/edge_fake.py for the CloudFront Functions and
KeyValueStore operations moto 5.2 lacks (Stubber-style, on those operations only)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.operations import reconcile
from sdeliver.operations.pointers import publish_site, urls
from sdeliver.project import Project
from sdeliver.resources import cdn
from sdeliver.sites import read_published

from .edge_fake import EdgeFake, keep_distribution_fields

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"
TEST = "test.dromedary.example.com"
PROD = "dromedary.example.com"


def cloudfront_config() -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text[: text.index("\npipeline:")] + "\n"  # the pipeline is not this test's
    return text.replace("site:\n", "site:\n  hosting: cloudfront\n", 1)


@pytest.fixture
def hosted(make_project, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    keep_distribution_fields(monkeypatch)
    project = make_project(cloudfront_config())
    fake = EdgeFake().install(project.aws)
    return project, fake


def converge(project: Project) -> Any:
    plan = reconcile.plan(project)
    reconcile.apply(project, plan)
    return plan


def fresh(project: Project, fake: EdgeFake) -> Project:
    """A new Project (no facts, new clients) over the same account, as a next command."""
    from sdeliver.aws import Aws

    again = Project(config=project.config, aws=Aws(region=project.region))
    fake.install(again.aws)
    return again


def zone() -> str:
    [found] = boto3.client("route53").list_hosted_zones_by_name(DNSName="example.com.")[
        "HostedZones"]
    return str(found["Id"])


def records(name: str) -> dict[str, dict[str, Any]]:
    found = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone())
    return {r["Type"]: r for r in found["ResourceRecordSets"] if r["Name"] == name + "."}


def distribution_of(name: str) -> dict[str, Any]:
    cf = boto3.client("cloudfront")
    [dist] = [d for d in cf.list_distributions()["DistributionList"].get("Items", [])
              if name in d["Aliases"].get("Items", [])]
    return dict(cf.get_distribution_config(Id=dist["Id"]) | {"Id": dist["Id"],
                                                               "ARN": dist["ARN"],
                                                               "DomainName": dist["DomainName"]})


def test_init_makes_certificate_distribution_oac_private_bucket_and_aliases(hosted) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted

    converge(project)

    acm = boto3.client("acm", region_name="us-east-1")
    certs = {c["DomainName"]: c for c in acm.list_certificates()["CertificateSummaryList"]}
    assert set(certs) >= {TEST, PROD}
    s3 = boto3.client("s3")
    for name in (TEST, PROD):
        cert = acm.describe_certificate(CertificateArn=certs[name]["CertificateArn"])
        assert cert["Certificate"]["Status"] == "ISSUED"
        [option] = cert["Certificate"]["DomainValidationOptions"]
        found = records(option["ResourceRecord"]["Name"].rstrip("."))
        assert found["CNAME"]["ResourceRecords"][0]["Value"] == option["ResourceRecord"]["Value"]

        dist = distribution_of(name)
        config = dist["DistributionConfig"]
        assert config["Aliases"]["Items"] == [name]
        assert config["ViewerCertificate"]["ACMCertificateArn"] == certs[name]["CertificateArn"]
        assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
        default = config["DefaultCacheBehavior"]
        assert default["ViewerProtocolPolicy"] == "redirect-to-https"
        assert default["Compress"] is True
        assert default["ResponseHeadersPolicyId"] == cdn.SECURITY_HEADERS
        [api] = config["CacheBehaviors"]["Items"]
        assert api["PathPattern"] == "/api/*"
        assert api["CachePolicyId"] == cdn.CACHING_DISABLED
        assert api["OriginRequestPolicyId"] == cdn.ALL_VIEWER_EXCEPT_HOST
        assert len(api["AllowedMethods"]["Items"]) == 7
        site_origin = config["Origins"]["Items"][0]
        assert site_origin["OriginAccessControlId"]

        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
        [statement] = policy["Statement"]
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": dist["ARN"]}}
        assert s3.get_bucket_website.__name__  # no website configuration:
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_website(Bucket=name)

        aliases = records(name)
        for rtype in ("A", "AAAA"):
            target = aliases[rtype]["AliasTarget"]
            assert target["HostedZoneId"] == cdn.CLOUDFRONT_ZONE_ID
            assert target["DNSName"].rstrip(".") == dist["DomainName"]
        assert fake.functions[f"dromedary-{(name == PROD and 'prod') or 'test'}-site"]["LIVE"]
    oacs = boto3.client("cloudfront").list_origin_access_controls()
    assert len(oacs["OriginAccessControlList"]["Items"]) == 2
    assert set(fake.stores) == {"dromedary-test-release", "dromedary-prod-release"}
    assert "waiting for CloudFront to deploy" in " ".join(project.progress.lines)
    assert urls(project, "test") == (f"https://{TEST}/api/", f"https://{TEST}/")


def test_a_second_reconcile_makes_zero_writes(hosted) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted
    converge(project)

    again = fresh(project, fake)
    plan = reconcile.plan(again)

    assert plan.converged, [c.to_json() for c in plan.pending]
    assert again.aws.stats.writes == 0


def test_drift_is_found_by_check_and_repaired(hosted) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted
    converge(project)
    cf, s3 = boto3.client("cloudfront"), boto3.client("s3")
    dist = distribution_of(TEST)
    config = dist["DistributionConfig"]
    config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "allow-all"
    config["ViewerCertificate"]["MinimumProtocolVersion"] = "TLSv1"
    cf.update_distribution(Id=dist["Id"], IfMatch=dist["ETag"], DistributionConfig=config)
    s3.put_bucket_policy(Bucket=PROD, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{PROD}/*"}]}))
    s3.delete_public_access_block(Bucket=PROD)
    aaaa = records(TEST)["AAAA"]
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone(), ChangeBatch={
        "Changes": [{"Action": "DELETE", "ResourceRecordSet": aaaa}]})
    fake.functions["dromedary-prod-site"]["LIVE"]["code"] = b"function handler(e) {}"

    again = fresh(project, fake)
    plan = reconcile.plan(again)  # what `reconcile --check` prints and exits 3 on

    drifted = {(c.kind, c.name) for c in plan.pending}
    assert drifted == {
        ("cloudfront-distribution", TEST),
        ("site-bucket", PROD),
        ("site-bucket-policy", PROD),
        ("dns-record", TEST),
        ("cloudfront-function", "dromedary-prod-site"),
    }
    assert again.aws.stats.writes == 0
    reconcile.apply(again, plan)
    assert reconcile.plan(fresh(project, fake)).converged
    assert distribution_of(TEST)["DistributionConfig"]["DefaultCacheBehavior"][
        "ViewerProtocolPolicy"] == "redirect-to-https"


def test_drift_of_a_validation_record_and_the_oac_is_found_and_repaired(hosted) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted
    converge(project)
    acm, cf, r53 = (boto3.client("acm", region_name="us-east-1"), boto3.client("cloudfront"),
                    boto3.client("route53"))
    [cert] = [c for c in acm.list_certificates()["CertificateSummaryList"]
              if c["DomainName"] == PROD]
    option = acm.describe_certificate(CertificateArn=cert["CertificateArn"])["Certificate"][
        "DomainValidationOptions"][0]["ResourceRecord"]
    [cname] = [r for r in r53.list_resource_record_sets(HostedZoneId=zone())["ResourceRecordSets"]
               if r["Name"] == option["Name"] and r["Type"] == "CNAME"]
    r53.change_resource_record_sets(HostedZoneId=zone(), ChangeBatch={
        "Changes": [{"Action": "DELETE", "ResourceRecordSet": cname}]})
    name = cdn.resource_name(project, "test", "site")
    [oac] = [o for o in cf.list_origin_access_controls()["OriginAccessControlList"]["Items"]
             if o["Name"] == name]
    found = cf.get_origin_access_control(Id=oac["Id"])
    config = found["OriginAccessControl"]["OriginAccessControlConfig"]
    cf.update_origin_access_control(Id=oac["Id"], IfMatch=found["ETag"],
                                    OriginAccessControlConfig={**config, "SigningBehavior": "never"})

    plan = reconcile.plan(fresh(project, fake))  # what `reconcile --check` prints

    assert {(c.kind, c.name) for c in plan.pending} == {
        ("acm-certificate", PROD), ("cloudfront-oac", name)}
    reconcile.apply(fresh(project, fake), plan)
    assert reconcile.plan(fresh(project, fake)).converged
    assert cf.get_origin_access_control(Id=oac["Id"])["OriginAccessControl"][
        "OriginAccessControlConfig"]["SigningBehavior"] == "always"


def site_zip(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for key, text in files.items():
            archive.writestr(key, text)
    return path


def objects(bucket: str) -> dict[str, str]:
    found = boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in found}


def test_a_release_switch_is_one_write_and_rewrites_no_object(hosted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted
    converge(project)
    first = site_zip(tmp_path, "r1", {"index.html": "one", "app.js": "1"})
    second = site_zip(tmp_path, "r2", {"index.html": "two", "app.js": "2", "new.css": "x"})
    manifest = {"site_digest": "d", "version": "1.0"}

    publish_site(project, "test", "r1", manifest, first)
    assert fake.live("dromedary-test-release") == "r1"
    assert read_published(project, TEST).release == "r1"
    before = objects(TEST)
    assert set(before) == {"releases/r1/index.html", "releases/r1/app.js",
                           "releases/r1/config.json"}
    config = json.loads(boto3.client("s3").get_object(
        Bucket=TEST, Key="releases/r1/config.json")["Body"].read())
    assert config["apiBaseurl"] == f"https://{TEST}/api/"
    assert config["release"] == "r1"

    # deploy r2: its files go under their own prefix; r1's objects are untouched.
    publish_site(project, "test", "r2", manifest, second)
    assert fake.live("dromedary-test-release") == "r2"
    after = objects(TEST)
    assert {k: v for k, v in after.items() if k.startswith("releases/r1/")} == before

    # rollback to r1: one PutKey, no object written or deleted.
    again = fresh(project, fake)
    result = publish_site(again, "test", "r1", manifest, first)
    assert fake.live("dromedary-test-release") == "r1"
    assert again.aws.stats.writes == 1
    assert again.aws.stats.operations["PutKey"] == 1
    assert objects(TEST) == after
    assert result is not None and result.uploaded == 0
    assert fake.puts == [("release", "r1"), ("release", "r2"), ("release", "r1")]


def test_destroy_disables_and_deletes_everything(hosted) -> None:  # type: ignore[no-untyped-def]
    project, fake = hosted
    converge(project)

    again = fresh(project, fake)
    plan = reconcile.destroy_plan(again, purge=False)
    reconcile.apply(again, plan)

    assert boto3.client("cloudfront").list_distributions()["DistributionList"].get(
        "Items", []) == []
    assert boto3.client("cloudfront").list_origin_access_controls()[
        "OriginAccessControlList"].get("Items", []) == []
    assert fake.functions == {} and fake.stores == {}
    for name in (TEST, PROD):
        assert "A" not in records(name) and "AAAA" not in records(name)
    assert "waiting for CloudFront to disable" in " ".join(again.progress.lines)
    assert not reconcile.destroy_plan(fresh(project, fake), purge=False).pending


def test_cloudfront_hosting_needs_a_domain_in_every_environment(tmp_path: Path) -> None:
    from sdeliver.config import parse_config
    from sdeliver.errors import ConfigError

    text = cloudfront_config().replace("    domain: test.dromedary.example.com", "")
    with pytest.raises(ConfigError, match="cloudfront needs a domain"):
        parse_config(text, tmp_path / "sdeliver.yaml")
    assert parse_config(EXAMPLE.read_text(), tmp_path / "x.yaml").site.hosting == "s3-website"
