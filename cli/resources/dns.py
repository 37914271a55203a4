"""The Route53 records: each environment's domain, an A alias to its site bucket's website.

Records cannot be tagged, so what sdeliver made is recognised by shape: an A alias, named
after a declared domain, whose target is an S3 website endpoint. Any other record of that
name is the user's and is never replaced or deleted.
"""

from __future__ import annotations

import re
from typing import Any

from .. import parallel
from ..errors import OperationFailed
from ..names import website_zone
from ..plan import Call, Change, FieldChange, call, diff_fields
from ..project import Project

KIND = "dns-record"
ZONE_FACT = "dns.zone_id"


def _fqdn(name: str) -> str:
    """A name as Route53 compares it: lower case, octal escapes (\\052) decoded, final dot."""
    name = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), name)
    return name.lower().rstrip(".") + "."


def domains(project: Project) -> dict[str, str]:
    """Environment -> domain, for the environments that have one and a site to point at."""
    if project.config.dns is None or project.config.site is None:
        return {}
    if project.config.site.hosting == "cloudfront":
        return {}  # its records are aliases to the distributions, made by cdn.py
    return {env: e.domain for env, e in project.config.environments.items() if e.domain}


def find_zone(project: Project, *, required: bool = True) -> str | None:
    """The id of the public hosted zone named `dns.zone` (cached in project.facts)."""
    if ZONE_FACT in project.facts:
        return str(project.facts[ZONE_FACT])
    assert project.config.dns is not None
    zone = project.config.dns.zone
    wanted = _fqdn(zone)
    found: list[str] = []
    params: dict[str, Any] = {"DNSName": wanted, "MaxItems": "100"}
    while True:
        page = project.aws.call(
            "route53", "list_hosted_zones_by_name", resource=f"hosted zone {zone}", **params
        )
        zones = page.get("HostedZones", [])
        for item in zones:
            if _fqdn(item["Name"]) == wanted and not item.get("Config", {}).get("PrivateZone"):
                found.append(item["Id"].rsplit("/", 1)[-1])
        # Zones come sorted by name: past ours, or no more pages, ends the search.
        past = any(_fqdn(item["Name"]) != wanted for item in zones)
        if past or not page.get("IsTruncated"):
            break
        params = {
            "DNSName": page["NextDNSName"],
            "HostedZoneId": page["NextHostedZoneId"],
            "MaxItems": "100",
        }
    if not found:
        if not required:
            return None
        raise OperationFailed(
            f"hosted zone {zone} not found in this account: create it, or fix dns.zone",
            hint="sdeliver adds records to an existing public hosted zone; it never creates one",
        )
    if len(found) > 1:
        raise OperationFailed(
            f"{len(found)} public hosted zones are named {zone} ({', '.join(found)}): "
            "sdeliver cannot tell which one the domain is delegated to",
            hint="delete the zones that are not in use",
        )
    project.facts[ZONE_FACT] = found[0]
    return found[0]


def read(project: Project, zone_id: str, domain: str) -> list[dict[str, Any]]:
    """Every record set named `domain` (A and any other type), as Route53 returns them."""
    wanted = _fqdn(domain)
    found = project.aws.call(
        "route53",
        "list_resource_record_sets",
        resource=f"record {domain}",
        HostedZoneId=zone_id,
        StartRecordName=wanted,
        MaxItems="20",
    )
    return [r for r in found.get("ResourceRecordSets", []) if _fqdn(r["Name"]) == wanted]


def desired_record(project: Project, domain: str) -> dict[str, Any]:
    endpoint, zone_id = website_zone(project.region)
    if project.config.dns is not None and project.config.dns.website_zone_id:
        zone_id = project.config.dns.website_zone_id  # AWS's table says otherwise
    return {
        "Name": _fqdn(domain),
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": zone_id,
            "DNSName": endpoint,
            "EvaluateTargetHealth": False,
        },
    }


def _target(record: dict[str, Any]) -> dict[str, Any] | None:
    alias = record.get("AliasTarget")
    if alias is None:
        return None
    return {
        "HostedZoneId": alias.get("HostedZoneId"),
        "DNSName": alias.get("DNSName", "").lower().rstrip("."),
        "EvaluateTargetHealth": alias.get("EvaluateTargetHealth", False),
    }


def _made_by_sdeliver(record: dict[str, Any]) -> bool:
    """A plain A alias to an S3 website endpoint: the shape sdeliver creates."""
    target = _target(record)
    return (
        record["Type"] == "A"
        and target is not None
        and "SetIdentifier" not in record
        and target["DNSName"].startswith("s3-website")
    )


def _describe(record: dict[str, Any]) -> str:
    target = _target(record)
    if target is not None:
        return f"{record['Type']} alias to {target['DNSName']}"
    values = [v["Value"] for v in record.get("ResourceRecords", [])]
    return f"{record['Type']} {', '.join(values)}".strip()


class _Batch:
    """The record changes of one plan, sent as one change batch by the first to apply."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.zone_id: str | None = None
        self.changes: list[dict[str, Any]] = []
        self.sent = False

    def add(self, change: dict[str, Any]) -> list[Call]:
        """Add a record change; the calls of the plan's change that carries it: the first
        change of the batch sends the whole batch, the others make no call of their own."""
        self.changes.append(change)
        return [call("route53.ChangeResourceRecordSets")] if len(self.changes) == 1 else []

    def apply(self, project: Project) -> None:
        if self.sent or not self.changes:
            return
        zone_id = self.zone_id or find_zone(project)
        found = project.aws.call(
            "route53",
            "change_resource_record_sets",
            resource=f"records in hosted zone {self.zone}",
            HostedZoneId=zone_id,
            ChangeBatch={"Comment": "sdeliver", "Changes": self.changes},
        )
        self.sent = True
        with project.progress.waiting("waiting for Route53 to apply the record changes"):
            project.aws.wait(
                "route53",
                "resource_record_sets_changed",
                resource=f"records in hosted zone {self.zone}",
                delay=5,
                max_attempts=120,
                Id=found["ChangeInfo"]["Id"],
            )


def plan(project: Project) -> list[Change]:
    wanted = domains(project)
    if not wanted:
        return []
    assert project.config.dns is not None
    zone_id = find_zone(project)
    assert zone_id is not None
    batch = _Batch(project.config.dns.zone)
    batch.zone_id = zone_id
    # The records side by side; the changes (and the batch) in the environments' order.
    found = parallel.each(lambda domain: read(project, zone_id, domain), wanted.values())
    return [
        _plan_record(project, batch, env, domain, records)
        for (env, domain), records in zip(wanted.items(), found, strict=True)
    ]


def _plan_record(
    project: Project, batch: _Batch, env: str, domain: str, records: list[dict[str, Any]]
) -> Change:
    """records: what `read` found named `domain`."""
    want = desired_record(project, domain)
    ours = [r for r in records if _made_by_sdeliver(r)]
    others = [r for r in records if not _made_by_sdeliver(r) and r["Type"] in ("A", "CNAME")]
    if others:
        raise OperationFailed(
            f"Route53 already has a record {domain} ({_describe(others[0])}) that sdeliver "
            "did not make; it will not replace it",
            hint=f"delete that record, or give environment {env} another domain",
        )
    have = _target(ours[0]) if ours else None
    fields = diff_fields(want["AliasTarget"], have)
    if have is not None and not fields:
        return Change(KIND, domain, "none")
    calls = batch.add({"Action": "UPSERT", "ResourceRecordSet": want})
    shown = [FieldChange(f"alias.{f.field}", f.old, f.new) for f in fields]
    return Change(
        KIND, domain, "create" if have is None else "update", shown, calls, batch.apply
    )


def destroy(project: Project) -> list[Change]:
    """Delete only the aliases sdeliver made: a declared domain to its bucket's endpoint."""
    wanted = domains(project)
    if not wanted:
        return []
    assert project.config.dns is not None
    zone_id = find_zone(project, required=False)
    if zone_id is None:
        return []
    batch = _Batch(project.config.dns.zone)
    batch.zone_id = zone_id
    expected = desired_record(project, "")["AliasTarget"]
    result = []
    for domain in wanted.values():
        for record in read(project, zone_id, domain):
            target = _target(record)
            if (
                _made_by_sdeliver(record)
                and target is not None
                and (target["DNSName"] == expected["DNSName"])
            ):
                # DELETE must repeat the record exactly as Route53 holds it.
                calls = batch.add({"Action": "DELETE", "ResourceRecordSet": record})
                fields = [FieldChange("alias.DNSName", target["DNSName"], None)]
                result.append(Change(KIND, domain, "delete", fields, calls, batch.apply))
    return result
