"""What AWS documents and moto does not enforce: website zone ids, partitions, size limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.aws import Aws
from sdeliver.config import parse_config
from sdeliver.errors import ConfigError
from sdeliver.names import website_zone
from sdeliver.project import Project
from sdeliver.resources import dns

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, Path("sdeliver.yaml"))


@pytest.mark.parametrize(("region", "zone_id"), [
    # AWS General Reference, "Amazon S3 website endpoints" (where public lists disagree).
    ("af-south-1", "Z83WF9RJE8B12"),
    ("eu-south-1", "Z30OZKI7KPW7MI"),
])
def test_website_zone_ids_follow_aws_s_table(region: str, zone_id: str) -> None:
    assert website_zone(region)[1] == zone_id


def test_a_configured_website_zone_id_overrides_the_table(make_project) -> None:  # type: ignore[no-untyped-def]
    text = EXAMPLE.read_text().replace("  zone: example.com", "  zone: example.com\n  website_zone_id: Z0123456789ABC")
    project = make_project(text)
    for change in dns.plan(project):
        if change.apply is not None:
            change.apply(project)
    r53 = boto3.client("route53", region_name="us-east-1")
    [zone] = r53.list_hosted_zones_by_name(DNSName="example.com.")["HostedZones"]
    found = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    aliases: list[dict[str, Any]] = [r["AliasTarget"] for r in found if "AliasTarget" in r]
    assert aliases and {a["HostedZoneId"] for a in aliases} == {"Z0123456789ABC"}


def test_api_urls_in_china_end_in_amazonaws_com_cn(mocked_aws: None) -> None:
    project = Project(config=parse(EXAMPLE.read_text()), aws=Aws(region="cn-north-1"))
    assert project.api_url("abc123", "prod") == (
        "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod/")


def test_a_domain_too_long_for_a_bucket_name_is_refused() -> None:
    domain = "a" * 52 + ".example.com"  # 64 characters: a valid name, not a valid bucket
    text = EXAMPLE.read_text().replace("test.dromedary.example.com", domain)
    with pytest.raises(ConfigError, match="longer than 63 characters"):
        parse(text)


def test_environment_variables_over_4_kb_are_refused_without_echoing_them() -> None:
    secret = "s3cr3t-" + "x" * 4100
    text = EXAMPLE.read_text().replace("    LOG_LEVEL: info", f"    LOG_LEVEL: info\n    TOKEN: {secret}")
    with pytest.raises(ConfigError, match="4 KB") as raised:
        parse(text)
    assert "s3cr3t" not in str(raised.value) + str(raised.value.hint or "")


def test_a_function_over_lambdas_unzipped_limit_is_refused_before_upload(tmp_path: Path) -> None:
    from sdeliver.errors import OperationFailed
    from sdeliver.package import UNZIPPED_LIMIT, package_directory

    source = tmp_path / "app"
    source.mkdir()
    (source / "app.py").write_text("def handler(event, context):\n    return {}\n")
    with (source / "model.bin").open("wb") as big:  # sparse: no disk written, no bytes zipped
        big.truncate(UNZIPPED_LIMIT)
    with pytest.raises(OperationFailed, match="at most 262 MB unzipped"):
        package_directory(source)


def _block_public_access(**settings: bool) -> None:
    boto3.client("s3control", region_name="us-east-1").put_public_access_block(
        AccountId="123456789012",
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                        "BlockPublicPolicy": False, "RestrictPublicBuckets": False,
                                        **settings})


def test_account_block_public_access_stops_the_site_plan_in_one_line(make_project) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.errors import OperationFailed
    from sdeliver.resources import site

    project = make_project()
    _block_public_access(BlockPublicPolicy=True)
    with pytest.raises(OperationFailed, match="Block Public Access BlockPublicPolicy on") as raised:
        site.plan(project)
    assert "\n" not in raised.value.message
    assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []


def test_an_account_without_block_public_access_or_with_only_acl_blocks_plans_the_site(make_project) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.resources import site

    project = make_project()
    assert [c.action for c in site.plan(project)] == ["create", "create"]
    _block_public_access()
    assert [c.action for c in site.plan(project)] == ["create", "create"]
