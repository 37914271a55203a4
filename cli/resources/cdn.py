"""HTTPS hosting (`site.hosting: cloudfront`): per environment an ACM certificate, a
CloudFront distribution in front of the private site bucket and the API stage, and the
Route53 aliases to it.

Per environment, in the order they are applied:
- `acm-certificate`: a DNS-validated certificate for the domain in us-east-1 (the region
  CloudFront reads certificates from); a matching issued one is reused. Its validation
  CNAMEs are written in the hosted zone, and the plan waits (with progress) until ISSUED.
- `cloudfront-oac`: the Origin Access Control through which the distribution signs its
  reads of the bucket, which stays private (Block Public Access on, see site.py).
- `cloudfront-kvs` and `cloudfront-function`: a KeyValueStore holding the live release id,
  read by a viewer-request CloudFront Function that rewrites `/x` to `/releases/<id>/x`
  (and strips `/api` from API requests). Switching a release is one PutKey; the rewrite
  happens before the cache key is computed, so two releases never mix in the cache.
- `cloudfront-distribution`: alias = domain, the certificate (TLSv1.2_2021, SNI),
  redirect-to-https, compression, the managed SecurityHeadersPolicy; the bucket as origin
  through the OAC and `/api/*` to the stage (CachingDisabled, AllViewerExceptHostHeader,
  all methods).
- `site-bucket-policy`: s3:GetObject for cloudfront.amazonaws.com, only with
  AWS:SourceArn = this distribution.
- `dns-record` A and AAAA aliases to the distribution.

A value a later change needs (the certificate's ARN, the new distribution's domain) is
found in `project.facts`, put there by the plan when the resource exists or by the
change that creates it.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import partial
from typing import Any

import botocore.auth
import botocore.exceptions

from .. import parallel
from ..errors import OperationFailed
from ..names import CLOUDFRONT_ZONE_ID
from ..plan import Action, Change, FieldChange, call
from ..project import TAG_APP, Project
from . import api
from .dns import _fqdn, _target, find_zone, read

ACM = "acm@us-east-1"
CLOUDFRONT = "cloudfront"
KVS = "cloudfront-keyvaluestore"
RELEASE_KEY = "release"  # the KeyValueStore key naming the live release
RELEASES = "releases"  # the bucket prefix under which each release's site lives
NO_WAIT = "cdn.no_wait"  # a fact: --no-wait (see no_wait)
DEPLOY_POLL = 20.0  # seconds between looks at a deploying distribution
SAY_EVERY = 60.0  # seconds between progress lines while it deploys
DEPLOY_PATIENCE = 45 * 60.0  # usually 3-15 minutes on AWS

# AWS-managed policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
SITE_ORIGIN = "site"
API_ORIGIN = "api"

FUNCTION_CODE = """\
import cf from 'cloudfront';
// sdeliver: serves the live release's site, and the API under /api/.
const kvs = cf.kvs('%(kvs_id)s');
async function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/api' || uri.startsWith('/api/')) {
    request.uri = uri.substring(4) || '/';
    return request;
  }
  var release;
  try {
    release = await kvs.get('%(key)s');
  } catch (err) {
    return { statusCode: 503, statusDescription: 'No release published yet' };
  }
  if (uri.endsWith('/')) { uri += 'index.html'; }
  request.uri = '/%(prefix)s/' + release + uri;
  return request;
}
"""


# -- which environments, names -------------------------------------------------------------


def is_cloudfront(project: Project) -> bool:
    return project.config.site is not None and project.config.site.hosting == "cloudfront"


def envs(project: Project) -> list[str]:
    return list(project.config.environments) if is_cloudfront(project) else []


def domain(project: Project, env: str) -> str:
    found = project.config.env(env).domain
    assert found is not None  # config: cloudfront hosting needs a domain per environment
    return found


def env_of_bucket(project: Project, bucket: str) -> str | None:
    """The environment whose site bucket `bucket` is, when it is hosted by CloudFront."""
    for env in envs(project):
        if project.site_bucket(env) == bucket:
            return env
    return None


def resource_name(project: Project, env: str, what: str) -> str:
    """A CloudFront name ([A-Za-z0-9_-], at most 64): <app>-<env>-<what>."""
    name = f"{project.app}-{env}-{what}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:55]}-{digest}"


def release_prefix(release_id: str) -> str:
    return f"{RELEASES}/{release_id}/"


def _fact(env: str, what: str) -> str:
    return f"cdn.{what}.{env}"


def _tags(project: Project, env: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(project.tags(env).items())]


# -- certificate ---------------------------------------------------------------------------


def find_certificate(project: Project, name: str) -> dict[str, Any] | None:
    """An ISSUED certificate for exactly `name` (else a pending one sdeliver requested)."""
    found = list(project.aws.paginate(
        ACM, "list_certificates", "CertificateSummaryList", resource="ACM certificates",
        CertificateStatuses=["ISSUED", "PENDING_VALIDATION"],
    ))
    matching = [c for c in found if c.get("DomainName") == name]
    described = parallel.each(lambda c: _describe_certificate(project, c["CertificateArn"]),
                              matching)
    exact = [c for c in described if c is not None
             and set(c.get("SubjectAlternativeNames") or [name]) == {name}]
    for status in ("ISSUED", "PENDING_VALIDATION"):
        for cert in exact:
            if cert["Status"] == status:
                return cert
    return None


def _describe_certificate(project: Project, arn: str) -> dict[str, Any] | None:
    found = project.aws.call(ACM, "describe_certificate", resource=f"certificate {arn}",
                             missing=True, CertificateArn=arn)
    return None if found is None else dict(found["Certificate"])


def _validation_records(cert: dict[str, Any]) -> list[dict[str, Any]]:
    return [o["ResourceRecord"] for o in cert.get("DomainValidationOptions") or []
            if o.get("ResourceRecord")]


def _missing_validation(project: Project, zone_id: str, cert: dict[str, Any]) -> list[Any]:
    missing = []
    for record in _validation_records(cert):
        found = project.aws.call(
            "route53", "list_resource_record_sets", resource=f"record {record['Name']}",
            HostedZoneId=zone_id, StartRecordName=record["Name"], StartRecordType="CNAME",
            MaxItems="1",
        ).get("ResourceRecordSets", [])
        have = [r for r in found if _fqdn(r["Name"]) == _fqdn(record["Name"])
                and r["Type"] == "CNAME"]
        values = [v["Value"].rstrip(".") for r in have for v in r.get("ResourceRecords", [])]
        if values != [record["Value"].rstrip(".")]:
            missing.append(record)
    return missing


def _plan_certificate(project: Project, env: str, zone_id: str) -> Change:
    name = domain(project, env)
    cert = find_certificate(project, name)
    kind = "acm-certificate"
    if cert is not None:
        project.facts[_fact(env, "cert")] = cert["CertificateArn"]
        missing = _missing_validation(project, zone_id, cert)
        if cert["Status"] == "ISSUED" and not missing:
            return Change(kind, name, "none")
        fields = [FieldChange("validation_records", "missing", "present")] if missing else []
        if cert["Status"] != "ISSUED":
            fields.append(FieldChange("status", cert["Status"], "ISSUED"))
        # Then waits until ACM issues it (reads).
        calls = [call("route53.ChangeResourceRecordSets")] if missing else []
        return Change(kind, name, "update", fields, calls,
                      lambda p: _validate(p, env, cert["CertificateArn"], zone_id))
    return Change(
        kind, name, "create", [FieldChange("domain", None, name)],
        # ACM asks one CNAME per domain and account: an earlier certificate's may be there.
        [call("acm.RequestCertificate"),
         call("route53.ChangeResourceRecordSets", when="its validation records are missing")],
        lambda p: _request_certificate(p, env, zone_id),
    )


def _request_certificate(project: Project, env: str, zone_id: str) -> None:
    name = domain(project, env)
    token = hashlib.sha256(f"{project.app}:{name}".encode()).hexdigest()[:32]
    arn = project.aws.call(
        ACM, "request_certificate", resource=f"certificate for {name}", DomainName=name,
        ValidationMethod="DNS", IdempotencyToken=token, Tags=_tags(project, env),
    )["CertificateArn"]
    project.facts[_fact(env, "cert")] = arn
    _validate(project, env, arn, zone_id)


def _validate(project: Project, env: str, arn: str, zone_id: str) -> None:
    """Write the certificate's validation CNAMEs, then wait (with progress) until ISSUED."""
    name = domain(project, env)
    cert: dict[str, Any] | None = None
    # ACM adds the validation records to the description a few seconds after the request.
    deadline = time.monotonic() + project.aws.retry_max_seconds
    while True:
        cert = _describe_certificate(project, arn)
        if cert is not None and (cert["Status"] == "ISSUED" or _validation_records(cert)):
            break
        if time.monotonic() > deadline:
            raise OperationFailed(f"ACM gave no DNS validation record for {name}",
                                  hint="run the command again in a minute")
        project.aws.sleep(2)
    records = _missing_validation(project, zone_id, cert)
    if records:
        found = project.aws.call(
            "route53", "change_resource_record_sets", resource=f"validation records of {name}",
            HostedZoneId=zone_id,
            ChangeBatch={"Comment": "sdeliver certificate validation", "Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": {
                    "Name": r["Name"], "Type": "CNAME", "TTL": 300,
                    "ResourceRecords": [{"Value": r["Value"]}]}}
                for r in records]},
        )
        with project.progress.waiting("waiting for Route53 to apply the validation records"):
            project.aws.wait("route53", "resource_record_sets_changed", resource=f"validation "
                             f"records of {name}", delay=5, max_attempts=120,
                             Id=found["ChangeInfo"]["Id"])
    if cert["Status"] != "ISSUED":
        with project.progress.waiting(
            f"waiting for ACM to validate and issue the certificate of {name} (minutes on AWS)"
        ):
            project.aws.wait(ACM, "certificate_validated", resource=f"certificate of {name}",
                             delay=10, max_attempts=180, CertificateArn=arn)


# -- origin access control -----------------------------------------------------------------


def _desired_oac(project: Project, env: str) -> dict[str, Any]:
    return {
        "Name": resource_name(project, env, "site"),
        "Description": f"sdeliver: {project.app} {env} site bucket",
        "SigningProtocol": "sigv4",
        "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3",
    }


def _find_oac(project: Project, name: str) -> dict[str, Any] | None:
    marker: dict[str, Any] = {}
    while True:
        page = project.aws.call(CLOUDFRONT, "list_origin_access_controls",
                                resource="origin access controls", **marker)
        listing = page.get("OriginAccessControlList") or {}
        for item in listing.get("Items") or []:
            if item.get("Name") == name:
                return dict(item)
        if not listing.get("IsTruncated"):
            return None
        marker = {"Marker": listing["NextMarker"]}


def _plan_oac(project: Project, env: str) -> Change:
    want = _desired_oac(project, env)
    have = _find_oac(project, want["Name"])
    kind, name = "cloudfront-oac", want["Name"]
    if have is None:
        def create(p: Project) -> None:
            found = p.aws.call(CLOUDFRONT, "create_origin_access_control",
                               resource=f"origin access control {name}",
                               OriginAccessControlConfig=want)
            p.facts[_fact(env, "oac")] = found["OriginAccessControl"]["Id"]

        return Change(kind, name, "create", [FieldChange("name", None, name)],
                      [call("cloudfront.CreateOriginAccessControl")], create)
    project.facts[_fact(env, "oac")] = have["Id"]
    fields = [FieldChange(k, have.get(k), v) for k, v in want.items()
              if k != "Name" and have.get(k) != v]
    if not fields:
        return Change(kind, name, "none")

    def update(p: Project) -> None:
        found = p.aws.call(CLOUDFRONT, "get_origin_access_control",
                           resource=f"origin access control {name}", Id=have["Id"])
        p.aws.call(CLOUDFRONT, "update_origin_access_control",
                   resource=f"origin access control {name}", Id=have["Id"],
                   IfMatch=found["ETag"], OriginAccessControlConfig=want)

    return Change(kind, name, "update", fields, [call("cloudfront.UpdateOriginAccessControl")],
                  update)


# -- key value store and function ----------------------------------------------------------


def describe_store(project: Project, env: str) -> dict[str, Any] | None:
    name = resource_name(project, env, "release")
    found = project.aws.call(CLOUDFRONT, "describe_key_value_store", resource=f"key value store "
                             f"{name}", missing=True, ignore=("EntityNotFound",), Name=name)
    return None if found is None else dict(found["KeyValueStore"])


def store_arn(project: Project, env: str) -> str:
    key = _fact(env, "kvs")
    if key not in project.facts:
        found = describe_store(project, env)
        if found is None:
            raise OperationFailed(
                f"CloudFront key value store {resource_name(project, env, 'release')} "
                "does not exist", hint="run 'sdeliver reconcile' first")
        project.facts[key] = found["ARN"]
        project.facts[_fact(env, "kvs_id")] = found["Id"]
    return str(project.facts[key])


def _plan_store(project: Project, env: str) -> Change:
    name = resource_name(project, env, "release")
    have = describe_store(project, env)
    if have is not None:
        project.facts[_fact(env, "kvs")] = have["ARN"]
        project.facts[_fact(env, "kvs_id")] = have["Id"]
        return Change("cloudfront-kvs", name, "none")

    def create(p: Project) -> None:
        found = p.aws.call(CLOUDFRONT, "create_key_value_store",
                           resource=f"key value store {name}", Name=name,
                           Comment=f"sdeliver: the live release of {p.app} {env}")
        store = found["KeyValueStore"]
        p.facts[_fact(env, "kvs")] = store["ARN"]
        p.facts[_fact(env, "kvs_id")] = store["Id"]
        with p.progress.waiting(f"waiting for key value store {name} to be ready"):
            deadline = time.monotonic() + p.aws.retry_max_seconds
            while store.get("Status") not in ("READY", None):
                if time.monotonic() > deadline:
                    raise OperationFailed(f"key value store {name} is still {store['Status']}",
                                          hint="run 'sdeliver reconcile' again in a minute")
                p.aws.sleep(2)
                store = describe_store(p, env) or store

    return Change("cloudfront-kvs", name, "create", [FieldChange("name", None, name)],
                  [call("cloudfront.CreateKeyValueStore")], create)


def function_code(kvs_id: str) -> bytes:
    return (FUNCTION_CODE % {"kvs_id": kvs_id, "key": RELEASE_KEY, "prefix": RELEASES}).encode()


def _function_config(project: Project, env: str, kvs_arn: str) -> dict[str, Any]:
    return {
        "Comment": f"sdeliver: {project.app} {env} live release and /api",
        "Runtime": "cloudfront-js-2.0",
        "KeyValueStoreAssociations": {"Quantity": 1, "Items": [{"KeyValueStoreARN": kvs_arn}]},
    }


def _read_function(project: Project, name: str) -> dict[str, Any] | None:
    """The LIVE stage's summary and code, or None when there is no published function."""
    described = project.aws.call(CLOUDFRONT, "describe_function", resource=f"function {name}",
                                 missing=True, ignore=("NoSuchFunctionExists",), Name=name,
                                 Stage="LIVE")
    if described is None:
        return None
    code = project.aws.call(CLOUDFRONT, "get_function", resource=f"function {name}",
                            Name=name, Stage="LIVE")
    summary = described["FunctionSummary"]
    return {"arn": summary["FunctionMetadata"]["FunctionARN"],
            "config": summary["FunctionConfig"], "code": code["FunctionCode"].read()}


def _plan_function(project: Project, env: str) -> Change:
    name = resource_name(project, env, "site")
    have = _read_function(project, name)
    kind = "cloudfront-function"
    kvs_arn = project.facts.get(_fact(env, "kvs"))
    kvs_id = project.facts.get(_fact(env, "kvs_id"))
    if have is not None:
        project.facts[_fact(env, "function")] = have["arn"]
        fields = []
        if kvs_arn is None or kvs_id is None:
            fields.append(FieldChange("key_value_store", "(none)", "(new)"))
        else:
            want = _function_config(project, env, kvs_arn)
            got = have["config"]
            assoc = [i["KeyValueStoreARN"] for i in
                     (got.get("KeyValueStoreAssociations") or {}).get("Items") or []]
            if got.get("Runtime") != want["Runtime"]:
                fields.append(FieldChange("Runtime", got.get("Runtime"), want["Runtime"]))
            if assoc != [kvs_arn]:
                fields.append(FieldChange("KeyValueStoreAssociations", assoc, [kvs_arn]))
            if have["code"] != function_code(kvs_id):
                fields.append(FieldChange("code", "(changed)", "(sdeliver's)"))
        if not fields:
            return Change(kind, name, "none")
        return Change(kind, name, "update", fields,
                      [call("cloudfront.UpdateFunction"), call("cloudfront.PublishFunction")],
                      lambda p: _put_function(p, env, name, exists=True))
    return Change(kind, name, "create", [FieldChange("name", None, name)],
                  [call("cloudfront.CreateFunction"), call("cloudfront.PublishFunction")],
                  lambda p: _put_function(p, env, name, exists=False))


def _put_function(project: Project, env: str, name: str, *, exists: bool) -> None:
    kvs_arn = store_arn(project, env)
    code = function_code(str(project.facts[_fact(env, "kvs_id")]))
    config = _function_config(project, env, kvs_arn)
    res = f"function {name}"
    if exists:
        dev = project.aws.call(CLOUDFRONT, "describe_function", resource=res, Name=name,
                               Stage="DEVELOPMENT")
        found = project.aws.call(CLOUDFRONT, "update_function", resource=res, Name=name,
                                 IfMatch=dev["ETag"], FunctionConfig=config, FunctionCode=code)
    else:
        found = project.aws.call(CLOUDFRONT, "create_function", resource=res, Name=name,
                                 FunctionConfig=config, FunctionCode=code)
    published = project.aws.call(CLOUDFRONT, "publish_function", resource=res, Name=name,
                                 IfMatch=found["ETag"])
    project.facts[_fact(env, "function")] = (
        published["FunctionSummary"]["FunctionMetadata"]["FunctionARN"])


# -- distribution --------------------------------------------------------------------------


def find_distribution(project: Project, env: str) -> dict[str, Any] | None:
    """The distribution whose alias is the environment's domain (aliases are unique
    across CloudFront), refused when it is not this app's."""
    name = domain(project, env)
    found = None
    marker: dict[str, Any] = {}
    while found is None:
        page = project.aws.call(CLOUDFRONT, "list_distributions", resource="distributions",
                                **marker)["DistributionList"]
        for item in page.get("Items") or []:
            if name in ((item.get("Aliases") or {}).get("Items") or []):
                found = item
        if found is not None or not page.get("IsTruncated"):
            break
        marker = {"Marker": page["NextMarker"]}
    if found is None:
        return None
    tags = project.aws.call(CLOUDFRONT, "list_tags_for_resource",
                            resource=f"distribution {found['Id']}", Resource=found["ARN"])
    owner = {t["Key"]: t["Value"] for t in (tags.get("Tags") or {}).get("Items") or []}
    if owner.get(TAG_APP) != project.app:
        raise OperationFailed(
            f"CloudFront distribution {found['Id']} already has the alias {name} and is not "
            f"sdeliver app {project.app}'s",
            hint=f"remove the alias from that distribution, or give {env} another domain")
    return dict(found)


def _api_domain(project: Project, api_id: str) -> str:
    suffix = "amazonaws.com.cn" if project.aws.partition == "aws-cn" else "amazonaws.com"
    return f"{api_id}.execute-api.{project.region}.{suffix}"


def _bucket_domain(project: Project, env: str) -> str:
    return f"{project.site_bucket(env)}.s3.{project.region}.amazonaws.com"


def desired_distribution(project: Project, env: str, ids: dict[str, str]) -> dict[str, Any]:
    """The DistributionConfig; ids: cert, oac, function, api (a "(new)" placeholder while
    planning one that does not exist yet)."""
    functions = {"Quantity": 1, "Items": [
        {"EventType": "viewer-request", "FunctionARN": ids["function"]}]}
    return {
        "CallerReference": f"sdeliver-{project.app}-{env}-{domain(project, env)}",
        "Comment": f"sdeliver: {project.app} {env}",
        "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": [domain(project, env)]},
        "DefaultRootObject": "index.html",
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
        "PriceClass": "PriceClass_100",
        "ViewerCertificate": {
            "ACMCertificateArn": ids["cert"],
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
            "CloudFrontDefaultCertificate": False,
        },
        "Origins": {"Quantity": 2, "Items": [
            {
                "Id": SITE_ORIGIN,
                "DomainName": _bucket_domain(project, env),
                "OriginPath": "",
                "OriginAccessControlId": ids["oac"],
                "S3OriginConfig": {"OriginAccessIdentity": ""},
            },
            {
                "Id": API_ORIGIN,
                "DomainName": _api_domain(project, ids["api"]),
                "OriginPath": f"/{env}",
                "CustomOriginConfig": {
                    "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                },
            },
        ]},
        "DefaultCacheBehavior": {
            "TargetOriginId": SITE_ORIGIN,
            "ViewerProtocolPolicy": "redirect-to-https",
            "Compress": True,
            "CachePolicyId": CACHING_OPTIMIZED,
            "ResponseHeadersPolicyId": SECURITY_HEADERS,
            "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
            "FunctionAssociations": functions,
        },
        "CacheBehaviors": {"Quantity": 1, "Items": [{
            "PathPattern": "/api/*",
            "TargetOriginId": API_ORIGIN,
            "ViewerProtocolPolicy": "redirect-to-https",
            "Compress": True,
            "CachePolicyId": CACHING_DISABLED,
            "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST,
            "ResponseHeadersPolicyId": SECURITY_HEADERS,
            "AllowedMethods": {"Quantity": 7, "Items": ALL_METHODS,
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
            "FunctionAssociations": functions,
        }]},
    }


def _behavior_shape(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": b.get("PathPattern"),
        "origin": b.get("TargetOriginId"),
        "viewer_protocol": b.get("ViewerProtocolPolicy"),
        "compress": b.get("Compress"),
        "cache_policy": b.get("CachePolicyId") or None,
        "origin_request_policy": b.get("OriginRequestPolicyId") or None,
        "headers_policy": b.get("ResponseHeadersPolicyId") or None,
        "methods": sorted((b.get("AllowedMethods") or {}).get("Items") or []),
        "functions": sorted(
            (f.get("EventType"), f.get("FunctionARN"))
            for f in (b.get("FunctionAssociations") or {}).get("Items") or []),
    }


def shape(config: dict[str, Any]) -> dict[str, Any]:
    """The fields sdeliver declares, in one spelling, from a desired or actual config."""
    cert = config.get("ViewerCertificate") or {}
    origins = {}
    for o in (config.get("Origins") or {}).get("Items") or []:
        custom = o.get("CustomOriginConfig") or {}
        origins[o["Id"]] = {
            "domain": o.get("DomainName"), "path": o.get("OriginPath") or "",
            "oac": o.get("OriginAccessControlId") or None,
            "protocol": custom.get("OriginProtocolPolicy"),
        }
    return {
        "enabled": config.get("Enabled"),
        "aliases": sorted((config.get("Aliases") or {}).get("Items") or []),
        "default_root_object": config.get("DefaultRootObject") or "",
        "ipv6": config.get("IsIPV6Enabled"),
        "certificate": cert.get("ACMCertificateArn") or None,
        "tls": cert.get("MinimumProtocolVersion"),
        "ssl_support": cert.get("SSLSupportMethod"),
        "origins": origins,
        "default_behavior": _behavior_shape(config.get("DefaultCacheBehavior") or {}),
        "behaviors": [_behavior_shape(b)
                      for b in (config.get("CacheBehaviors") or {}).get("Items") or []],
    }


def _ids(project: Project, env: str) -> dict[str, str]:
    found = {what: project.facts.get(_fact(env, what)) for what in ("cert", "oac", "function")}
    missing = [what for what, value in found.items() if value is None]
    if missing:
        raise OperationFailed(f"the {', '.join(missing)} of environment {env} are not made yet",
                              hint="run 'sdeliver reconcile'")
    return {**{k: str(v) for k, v in found.items()}, "api": api.rest_api_id(project)}


def _planned_ids(project: Project, env: str) -> dict[str, str]:
    rest = project.facts.get("rest_api_id")
    if rest is None:
        found = api.find_api(project)
        rest = found["id"] if found is not None else None
    ids = {what: project.facts.get(_fact(env, what)) for what in ("cert", "oac", "function")}
    return {**{k: str(v) if v else "(new)" for k, v in ids.items()},
            "api": str(rest) if rest else "(new)"}


def _plan_distribution(project: Project, env: str) -> Change:
    name = domain(project, env)
    kind = "cloudfront-distribution"
    have = find_distribution(project, env)
    if have is None:
        return Change(kind, name, "create", [FieldChange("aliases", None, [name])],
                      [call("cloudfront.CreateDistributionWithTags")],
                      lambda p: _create_distribution(p, env))
    _remember(project, env, have)
    found = project.aws.call(CLOUDFRONT, "get_distribution_config",
                             resource=f"distribution {have['Id']}", Id=have["Id"])
    want = shape(desired_distribution(project, env, _planned_ids(project, env)))
    got = shape(found["DistributionConfig"])
    fields = [FieldChange(k, got.get(k), v) for k, v in want.items() if got.get(k) != v]
    if not fields:
        return Change(kind, name, "none")
    return Change(kind, name, "update", fields, [call("cloudfront.UpdateDistribution")],
                  lambda p: _update_distribution(p, env, have["Id"]))


def _remember(project: Project, env: str, dist: dict[str, Any]) -> None:
    project.facts[_fact(env, "dist")] = {
        "id": dist["Id"], "arn": dist["ARN"], "domain": dist["DomainName"]}


def _create_distribution(project: Project, env: str) -> None:
    config = desired_distribution(project, env, _ids(project, env))
    found = project.aws.call(
        CLOUDFRONT, "create_distribution_with_tags",
        resource=f"distribution {domain(project, env)}",
        DistributionConfigWithTags={"DistributionConfig": config,
                                    "Tags": {"Items": _tags(project, env)}},
    )
    _remember(project, env, found["Distribution"])
    _wait_deployed(project, env)


def _update_distribution(project: Project, env: str, dist_id: str) -> None:
    found = project.aws.call(CLOUDFRONT, "get_distribution_config",
                             resource=f"distribution {dist_id}", Id=dist_id)
    config = {**found["DistributionConfig"], **desired_distribution(project, env,
                                                                     _ids(project, env))}
    config["CallerReference"] = found["DistributionConfig"]["CallerReference"]
    project.aws.call(CLOUDFRONT, "update_distribution", resource=f"distribution {dist_id}",
                     Id=dist_id, IfMatch=found["ETag"], DistributionConfig=config)
    _wait_deployed(project, env)


def no_wait(project: Project) -> None:
    """`--no-wait`: this command does not wait for a distribution it creates or updates to
    deploy (minutes on AWS). Safe: nothing sdeliver does next needs it deployed — the
    bucket policy and the alias records need only its ARN and domain, a release switch
    only the key value store; `status` says when it is done. Waiting for the certificate
    is never skipped: CloudFront refuses a distribution whose certificate is not issued."""
    project.facts[NO_WAIT] = True


def _wait_deployed(project: Project, env: str) -> None:
    dist = project.facts[_fact(env, "dist")]
    if project.facts.get(NO_WAIT):
        project.progress.step(
            f"not waiting for CloudFront to deploy distribution {dist['id']} (--no-wait): "
            f"'sdeliver status' says when {domain(project, env)} serves it")
        return
    wait_deployed(project, dist["id"], "deploy")


def wait_deployed(project: Project, dist_id: str, what: str) -> None:
    """Poll until the distribution is Deployed, with a line every SAY_EVERY seconds."""
    started = time.monotonic()
    said = -SAY_EVERY
    with project.progress.waiting(
        f"waiting for CloudFront to {what} distribution {dist_id} (minutes on AWS)"
    ):
        while True:
            status = deploy_status(project, dist_id)
            if status == "Deployed":
                return
            waited = time.monotonic() - started
            if waited > DEPLOY_PATIENCE:
                raise OperationFailed(
                    f"CloudFront distribution {dist_id} is still {status} after "
                    f"{waited / 60:.0f} minutes",
                    hint="'sdeliver status' says when it is done; then run the command again")
            if waited - said >= SAY_EVERY:
                said = waited
                project.progress.step(f"CloudFront distribution {dist_id}: {status}, "
                                      f"{int(waited) // 60}m{int(waited) % 60:02d}s so far")
            project.aws.sleep(DEPLOY_POLL)


def deploy_status(project: Project, dist_id: str) -> str:
    """"InProgress" while CloudFront deploys the distribution's last change, "Deployed" once
    every edge location serves it."""
    found = project.aws.call(CLOUDFRONT, "get_distribution", resource=f"distribution {dist_id}",
                             Id=dist_id)
    return str(found["Distribution"]["Status"])


def distribution_state(project: Project, env: str) -> dict[str, str] | None:
    """For `status`: {id, domain, status} of the environment's distribution, read now
    (status: "InProgress" while a change deploys, "Deployed" once done), or None."""
    found = find_distribution(project, env)
    if found is None:
        return None
    return {"id": found["Id"], "domain": found["DomainName"], "status": found["Status"]}


def distribution(project: Project, env: str) -> dict[str, str] | None:
    """{id, arn, domain} of the environment's distribution, or None."""
    key = _fact(env, "dist")
    if key not in project.facts:
        found = find_distribution(project, env)
        if found is None:
            return None
        _remember(project, env, found)
    return dict(project.facts[key])


# -- bucket policy -------------------------------------------------------------------------


def desired_policy(project: Project, env: str, dist_arn: str) -> dict[str, Any]:
    bucket = project.site_bucket(env)
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CloudFrontReadsThroughOAC",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:{project.aws.partition}:s3:::{bucket}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": dist_arn}},
        }],
    }


def _plan_policy(project: Project, env: str) -> Change:
    bucket = project.site_bucket(env)
    dist = project.facts.get(_fact(env, "dist"))
    found = project.aws.call("s3", "get_bucket_policy", resource=f"bucket {bucket}",
                             missing=True, ignore=("NoSuchBucketPolicy",), Bucket=bucket)
    have = json.loads(found["Policy"]) if found else None
    want = desired_policy(project, env, dist["arn"]) if dist else None
    if want is not None and have == want:
        return Change("site-bucket-policy", bucket, "none")

    def put(p: Project) -> None:
        arn = p.facts[_fact(env, "dist")]["arn"]
        p.aws.call("s3", "put_bucket_policy", resource=f"bucket {bucket}", Bucket=bucket,
                   Policy=json.dumps(desired_policy(p, env, arn)))

    return Change("site-bucket-policy", bucket, "create" if have is None else "update",
                  [FieldChange("policy", "(other)" if have else None,
                               "GetObject for this distribution only")],
                  [call("s3.PutBucketPolicy")], put)


# -- alias records -------------------------------------------------------------------------


def _alias(name: str, dist_domain: str, rtype: str) -> dict[str, Any]:
    return {"Name": _fqdn(name), "Type": rtype, "AliasTarget": {
        "HostedZoneId": CLOUDFRONT_ZONE_ID, "DNSName": dist_domain.rstrip(".") + ".",
        "EvaluateTargetHealth": False}}


def _plan_records(project: Project, env: str, zone_id: str) -> Change:
    name = domain(project, env)
    dist = project.facts.get(_fact(env, "dist"))
    records = read(project, zone_id, name)
    by_type = {r["Type"]: r for r in records if "SetIdentifier" not in r}
    others = [r for r in records if r["Type"] == "CNAME" or (
        r["Type"] in ("A", "AAAA") and _target(r) is None)]
    if others:
        raise OperationFailed(
            f"Route53 already has a record {name} ({others[0]['Type']}) that sdeliver did "
            "not make; it will not replace it",
            hint=f"delete that record, or give environment {env} another domain")
    fields = []
    for rtype in ("A", "AAAA"):
        have = _target(by_type[rtype]) if rtype in by_type else None
        want = _target(_alias(name, dist["domain"], rtype)) if dist else None
        if want is None or have != want:
            fields.append(FieldChange(f"{rtype}.alias", (have or {}).get("DNSName"),
                                      (want or {}).get("DNSName", "(the distribution)")))
    if not fields:
        return Change("dns-record", name, "none")

    def upsert(p: Project) -> None:
        target = p.facts[_fact(env, "dist")]["domain"]
        found = p.aws.call(
            "route53", "change_resource_record_sets", resource=f"record {name}",
            HostedZoneId=zone_id, ChangeBatch={"Comment": "sdeliver", "Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": _alias(name, target, t)}
                for t in ("A", "AAAA")]})
        with p.progress.waiting("waiting for Route53 to apply the record changes"):
            p.aws.wait("route53", "resource_record_sets_changed", resource=f"record {name}",
                       delay=5, max_attempts=120, Id=found["ChangeInfo"]["Id"])

    action: Action = "create" if not any(t in by_type for t in ("A", "AAAA")) else "update"
    return Change("dns-record", name, action, fields, [call("route53.ChangeResourceRecordSets")],
                  upsert)


def check_crt(project: Project) -> None:
    """The KeyValueStore API (the live release) is signed with SigV4A, which botocore
    does only with its CRT extra installed: say so before anything is made. Asked of this
    project's client, which resolves its endpoint without sending anything (an endpoint
    URL's client may be set up to sign otherwise)."""

    client = project.aws.client(KVS)
    probe = f"arn:{project.aws.partition}:cloudfront::000000000000:key-value-store/probe"
    try:
        _, _, properties = client._resolve_endpoint_ruleset(
            client.meta.service_model.operation_model("GetKey"),
            {"KvsARN": probe, "Key": RELEASE_KEY}, {})
        # The ruleset's "sigv4a" is botocore's signer "v4a" (botocore strips "sig" too).
        schemes = [str(s.get("name", "")).removeprefix("sig")
                   for s in (properties or {}).get("authSchemes") or []]
        if schemes and not any(name in botocore.auth.AUTH_TYPE_MAPS for name in schemes):
            # botocore has a signer for none of them: SigV4A comes with awscrt.
            raise botocore.exceptions.MissingDependencyException(msg="awscrt")
    except botocore.exceptions.MissingDependencyException:
        raise OperationFailed(
            "site.hosting cloudfront switches releases through a CloudFront KeyValueStore, "
            "whose API botocore signs only with awscrt, which is missing here (or "
            "BOTO_DISABLE_CRT is set)",
            hint="reinstall sdeliver with its dependencies, or pip install 'boto3[crt]' "
            "in its environment",
        ) from None


# -- plan, prune, destroy ------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    if not envs(project):
        return []
    check_crt(project)
    zone_id = find_zone(project)
    assert zone_id is not None
    return [c for changes in parallel.each(lambda env: _plan_env(project, env, zone_id),
                                           envs(project)) for c in changes]


def _plan_env(project: Project, env: str, zone_id: str) -> list[Change]:
    """One environment's changes in the order they must be applied (each reads the facts
    an earlier one learnt or made)."""
    cert, oac, store = parallel.together(
        lambda: _plan_certificate(project, env, zone_id),
        lambda: _plan_oac(project, env),
        lambda: _plan_store(project, env),
    )
    function = _plan_function(project, env)
    dist = _plan_distribution(project, env)
    policy, records = parallel.together(
        lambda: _plan_policy(project, env),
        lambda: _plan_records(project, env, zone_id),
    )
    return [cert, oac, store, function, dist, policy, records]


def destroy(project: Project) -> list[Change]:
    """Disable, wait for and delete each environment's distribution, then its function,
    key value store and OAC, and the alias records. Certificates are kept: ACM charges
    nothing for them and another distribution may use one (a reused certificate is never
    ours to delete)."""
    if not envs(project):
        return []

    zone_id = find_zone(project, required=False)
    result: list[Change] = []
    for env in envs(project):
        name = domain(project, env)
        if zone_id is not None:
            result += _destroy_records(project, env, zone_id)
        dist = find_distribution(project, env)
        if dist is not None:
            # Disabled first, unless it is already (an earlier destroy was interrupted).
            calls = [call("cloudfront.UpdateDistribution")] if dist.get("Enabled", True) else []
            result.append(Change("cloudfront-distribution", name, "delete",
                                 [FieldChange("id", dist["Id"], None)],
                                 [*calls, call("cloudfront.DeleteDistribution")],
                                 partial(_delete_distribution, dist_id=dist["Id"])))
        fname = resource_name(project, env, "site")
        if _read_function(project, fname) is not None:
            result.append(Change("cloudfront-function", fname, "delete", [], [
                call("cloudfront.DeleteFunction")], partial(_delete_function, name=fname)))
        store = describe_store(project, env)
        if store is not None:
            result.append(Change("cloudfront-kvs", store["Name"], "delete", [],
                                 [call("cloudfront.DeleteKeyValueStore")],
                                 partial(_delete_store, name=store["Name"])))
        oac = _find_oac(project, resource_name(project, env, "site"))
        if oac is not None:
            result.append(Change("cloudfront-oac", oac["Name"], "delete", [], [
                call("cloudfront.DeleteOriginAccessControl")],
                partial(_delete_oac, oac_id=oac["Id"])))
    return result


def _destroy_records(project: Project, env: str, zone_id: str) -> list[Change]:
    name = domain(project, env)
    ours = [r for r in read(project, zone_id, name) if r["Type"] in ("A", "AAAA")
            and r.get("AliasTarget", {}).get("HostedZoneId") == CLOUDFRONT_ZONE_ID]
    if not ours:
        return []

    def delete(p: Project) -> None:
        p.aws.call("route53", "change_resource_record_sets", resource=f"record {name}",
                   HostedZoneId=zone_id, ChangeBatch={"Comment": "sdeliver", "Changes": [
                       {"Action": "DELETE", "ResourceRecordSet": r} for r in ours]})

    return [Change("dns-record", name, "delete", [FieldChange("alias", "CloudFront", None)],
                   [call("route53.ChangeResourceRecordSets")], delete)]


def _delete_distribution(project: Project, dist_id: str) -> None:
    res = f"distribution {dist_id}"
    found = project.aws.call(CLOUDFRONT, "get_distribution_config", resource=res, Id=dist_id)
    etag = found["ETag"]
    if found["DistributionConfig"].get("Enabled"):
        config = {**found["DistributionConfig"], "Enabled": False}
        etag = project.aws.call(CLOUDFRONT, "update_distribution", resource=res, Id=dist_id,
                                IfMatch=etag, DistributionConfig=config)["ETag"]
    wait_deployed(project, dist_id, "disable")
    etag = project.aws.call(CLOUDFRONT, "get_distribution", resource=res, Id=dist_id)["ETag"]
    project.aws.call(CLOUDFRONT, "delete_distribution", resource=res, Id=dist_id, IfMatch=etag)


def _delete_function(project: Project, name: str) -> None:
    found = project.aws.call(CLOUDFRONT, "describe_function", resource=f"function {name}",
                             Name=name)
    project.aws.call(CLOUDFRONT, "delete_function", resource=f"function {name}", Name=name,
                     IfMatch=found["ETag"])


def _delete_store(project: Project, name: str) -> None:
    found = project.aws.call(CLOUDFRONT, "describe_key_value_store",
                             resource=f"key value store {name}", Name=name)
    project.aws.call(CLOUDFRONT, "delete_key_value_store", resource=f"key value store {name}",
                     Name=name, IfMatch=found["ETag"])


def _delete_oac(project: Project, oac_id: str) -> None:
    found = project.aws.call(CLOUDFRONT, "get_origin_access_control",
                             resource=f"origin access control {oac_id}", Id=oac_id)
    project.aws.call(CLOUDFRONT, "delete_origin_access_control",
                     resource=f"origin access control {oac_id}", Id=oac_id,
                     IfMatch=found["ETag"])


# -- the live release ----------------------------------------------------------------------


def live_release(project: Project, env: str) -> str | None:
    """The release the environment's KeyValueStore names (None: none yet)."""
    check_crt(project)
    found = project.aws.call(KVS, "get_key", resource=f"live release of {env}", missing=True,
                             ignore=("ResourceNotFoundException",),
                             KvsARN=store_arn(project, env), Key=RELEASE_KEY)
    return None if found is None else str(found["Value"])


def switch_release(project: Project, env: str, release_id: str) -> bool:
    """Make `release_id` the live release: ONE PutKey (none when it is live already)."""
    check_crt(project)
    if live_release(project, env) == release_id:
        return False
    arn = store_arn(project, env)
    etag = project.aws.call(KVS, "describe_key_value_store", resource=f"live release of {env}",
                            KvsARN=arn)["ETag"]
    project.aws.call(KVS, "put_key", resource=f"live release of {env}", KvsARN=arn,
                     Key=RELEASE_KEY, Value=release_id, IfMatch=etag)
    return True
