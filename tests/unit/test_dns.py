"""Route53: each domain an A alias to its site bucket's website endpoint, in one change batch,
and never a record sdeliver did not make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.errors import OperationFailed
from sdeliver.project import Project
from sdeliver.resources import dns

TEST = "test.dromedary.example.com"
PROD = "dromedary.example.com"
EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"


def converge(project: Project) -> list[Any]:
    changes = dns.plan(project)
    for change in changes:
        if change.action != "none" and change.apply is not None:
            change.apply(project)
    return changes


def route53():  # type: ignore[no-untyped-def]
    return boto3.client("route53", region_name="us-east-1")


def zone_id() -> str:
    [zone] = route53().list_hosted_zones_by_name(DNSName="example.com.")["HostedZones"]
    return str(zone["Id"])


def records(name: str) -> list[dict[str, Any]]:
    found = route53().list_resource_record_sets(HostedZoneId=zone_id())["ResourceRecordSets"]
    return [r for r in found if r["Name"] == name + "."]


def change(action: str, record: dict[str, Any]) -> None:
    route53().change_resource_record_sets(
        HostedZoneId=zone_id(),
        ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]},
    )


def test_each_domain_becomes_an_a_alias_to_the_s3_website_endpoint(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    changes = converge(project)

    assert [(c.kind, c.name, c.action) for c in changes] == [
        ("dns-record", TEST, "create"),
        ("dns-record", PROD, "create"),
    ]
    for name in (TEST, PROD):
        [record] = records(name)
        assert record["Type"] == "A"
        assert record["AliasTarget"]["DNSName"].rstrip(".") == "s3-website-us-east-1.amazonaws.com"
        assert record["AliasTarget"]["HostedZoneId"] == "Z3AQBSTGFYJSTF"
        assert record["AliasTarget"]["EvaluateTargetHealth"] is False


def test_all_records_go_in_one_change_batch_with_one_wait(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    converge(project)

    assert project.aws.stats.operations["ChangeResourceRecordSets"] == 1
    assert project.progress.lines.count("waiting for Route53 to apply the record changes") == 1


def test_the_alias_uses_the_website_endpoint_of_the_configured_region(make_project) -> None:  # type: ignore[no-untyped-def]
    text = EXAMPLE.read_text(encoding="utf-8").replace("region: us-east-1", "region: eu-central-1")
    project = make_project(text)

    converge(project)

    [record] = records(PROD)
    assert record["AliasTarget"]["DNSName"].rstrip(".") == "s3-website.eu-central-1.amazonaws.com"
    assert record["AliasTarget"]["HostedZoneId"] == "Z21DNDUVLTQW6Q"


def test_a_second_plan_changes_nothing_and_writes_nothing(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    writes = project.aws.stats.writes

    assert [c.action for c in dns.plan(project)] == ["none", "none"]
    assert project.aws.stats.writes == writes


def test_a_record_deleted_behind_sdelivers_back_is_created_again(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    [record] = records(TEST)
    change("DELETE", record)

    changes = converge(project)

    assert [(c.name, c.action) for c in changes] == [(TEST, "create"), (PROD, "none")]
    assert len(records(TEST)) == 1


def test_an_alias_pointed_elsewhere_in_s3_is_shown_and_repaired(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    change(
        "UPSERT",
        {
            "Name": PROD,
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": "Z1BKCTXD74EZPE",
                "DNSName": "s3-website-eu-west-1.amazonaws.com",
                "EvaluateTargetHealth": False,
            },
        },
    )

    changes = converge(project)

    [drifted] = [c for c in changes if c.action != "none"]
    assert (drifted.name, drifted.action) == (PROD, "update")
    assert {f.field for f in drifted.fields} == {"alias.HostedZoneId", "alias.DNSName"}
    assert records(PROD)[0]["AliasTarget"]["HostedZoneId"] == "Z3AQBSTGFYJSTF"


def test_a_missing_hosted_zone_is_a_clear_error(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project(zone=False)

    with pytest.raises(OperationFailed) as failed:
        dns.plan(project)
    assert failed.value.message == (
        "hosted zone example.com not found in this account: create it, or fix dns.zone"
    )


def listing_as_on_aws(project: Project, monkeypatch, zones: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    """AWS lists zones from the given name on, whether or not one has that name (moto
    filters by the exact name), so the code must pick the exact one itself."""
    real_call = project.aws.call

    def call(service: str, operation: str, **params: Any) -> Any:
        if operation == "list_hosted_zones_by_name":
            return {"HostedZones": zones, "IsTruncated": False}
        return real_call(service, operation, **params)

    monkeypatch.setattr(project.aws, "call", call)


def zone(name: str, zone_id: str, *, private: bool = False) -> dict[str, Any]:
    return {"Id": f"/hostedzone/{zone_id}", "Name": name, "Config": {"PrivateZone": private}}


def test_a_zone_listed_after_the_name_is_not_taken(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = make_project(zone=False)
    listing_as_on_aws(project, monkeypatch, [zone("sub.example.com.", "Z1")])

    with pytest.raises(OperationFailed, match=r"hosted zone example\.com not found"):
        dns.find_zone(project)


def test_a_private_zone_of_the_same_name_is_passed_over(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = make_project(zone=False)
    zones = [zone("example.com.", "ZPRIVATE", private=True), zone("example.com.", "ZPUBLIC")]
    listing_as_on_aws(project, monkeypatch, zones)

    assert dns.find_zone(project) == "ZPUBLIC"


def test_two_public_zones_of_the_same_name_are_refused(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = make_project(zone=False)
    listing_as_on_aws(
        project, monkeypatch, [zone("example.com.", "ZA"), zone("example.com.", "ZB")]
    )

    with pytest.raises(OperationFailed, match=r"2 public hosted zones are named example\.com"):
        dns.find_zone(project)


def test_the_zone_id_is_kept_in_facts(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    dns.plan(project)

    assert project.facts["dns.zone_id"] == zone_id().rsplit("/", 1)[-1]


def test_a_record_sdeliver_did_not_make_is_never_replaced(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    mine = {"Name": TEST, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.7"}]}
    change("CREATE", mine)

    with pytest.raises(OperationFailed, match=r"record test.dromedary.example.com \(A 192.0.2.7\)"):
        dns.plan(project)
    assert records(TEST)[0]["ResourceRecords"] == [{"Value": "192.0.2.7"}]


def test_no_dns_section_means_no_records(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project("app: shop\nenvironments:\n  test: {}\n")

    assert dns.plan(project) == []
    assert dns.destroy(project) == []


def test_destroy_deletes_only_the_aliases_sdeliver_made(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    change(
        "CREATE",
        {
            "Name": "www.example.com",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": PROD}],
        },
    )

    changes = dns.destroy(project)
    for planned in changes:
        assert planned.apply is not None
        planned.apply(project)

    assert sorted((c.name, c.action) for c in changes) == [(PROD, "delete"), (TEST, "delete")]
    assert records(TEST) == [] and records(PROD) == []
    assert len(records("www.example.com")) == 1
    assert project.aws.stats.operations["ChangeResourceRecordSets"] == 2  # create + delete


def test_destroy_without_the_zone_does_nothing(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project(zone=False)

    assert dns.destroy(project) == []
