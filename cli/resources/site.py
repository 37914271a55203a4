"""The site buckets: one public S3 website per environment, with its `config.json`.

The bucket is named after the environment's domain (Route53 aliases an S3 website endpoint
only to a bucket of the record's name), else a derived name. Reconcile makes sure the
bucket serves a website, grants public `s3:GetObject` and nothing else, and holds a
`config.json`; the content after that is a release pointer that only deploy, promote and
rollback move, so an existing `config.json` is never rewritten here.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .. import parallel
from ..errors import AwsError, OperationFailed
from ..ledger import Ledger
from ..names import website_zone
from ..plan import Change, FieldChange, call, diff_fields
from ..project import TAG_APP, TAG_ENV, Project
from ..publish import CONFIG_JSON, config_bytes, content_type
from .artifacts import bucket_exists, create_bucket, empty_bucket, put_tags, read_tags

KIND = "site-bucket"
CONFIG_KEY = CONFIG_JSON
INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "error.html"

# A public policy needs these two off; the ACL blocks stay on (the policy grants the reads).
PUBLIC_POLICY_ALLOWED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}

# -- desired -------------------------------------------------------------------------------


def envs(project: Project) -> list[str]:
    """The environments that have a site bucket (none when sdeliver.yaml declares no site)."""
    return list(project.config.environments) if project.config.site is not None else []


def desired_policy(project: Project, bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadGetObject",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:{project.aws.partition}:s3:::{bucket}/*",
            }
        ],
    }


def desired_website() -> dict[str, Any]:
    return {"IndexDocument": {"Suffix": INDEX_DOCUMENT}, "ErrorDocument": {"Key": ERROR_DOCUMENT}}


def initial_config(project: Project, env: str) -> dict[str, Any]:
    """The first `config.json`: the site's own keys, and no release yet (the stage answers
    503 until then; `status` says the same)."""
    site = project.config.site
    return {
        **(site.config if site is not None else {}),
        "apiBaseurl": "",
        "env": env,
        "version": "",
        "release": None,
        "status": "no release yet",
    }


# CloudFront hosting (cdn.py): a private bucket, read only through the distribution's OAC.
PRIVATE = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def cloudfront(project: Project) -> bool:
    return project.config.site is not None and project.config.site.hosting == "cloudfront"


def desired(project: Project, env: str, bucket: str) -> dict[str, Any]:
    if cloudfront(project):
        # Its policy is the distribution's (cdn.py); its content lives under releases/.
        return {"public_access_block": PRIVATE, "tags": project.tags(env)}
    return {
        "website": desired_website(),
        "public_access_block": PUBLIC_POLICY_ALLOWED,
        "policy": _normal_policy(desired_policy(project, bucket)),
        "tags": project.tags(env),
        "config_json": True,
    }


# -- actual --------------------------------------------------------------------------------


def _exists(project: Project, bucket: str) -> bool:
    try:
        return bucket_exists(project, bucket)
    except AwsError as err:
        if err.code in {"403", "Forbidden", "AccessDenied"}:
            # HeadBucket answers 403 for a bucket of another account (names are global).
            raise OperationFailed(
                f"site bucket {bucket} exists and is owned by another AWS account "
                "(or these credentials may not read it)",
                hint="bucket names are global: choose another domain, or use that account",
            ) from None
        raise


def _region(project: Project, bucket: str) -> str:
    found = project.aws.call(
        "s3", "get_bucket_location", resource=f"bucket {bucket}", Bucket=bucket
    )
    location = found.get("LocationConstraint") or "us-east-1"
    return "eu-west-1" if location == "EU" else str(location)


def _website(project: Project, bucket: str) -> dict[str, Any] | None:
    return project.aws.call(  # type: ignore[no-any-return]
        "s3", "get_bucket_website", resource=f"bucket {bucket}", missing=True, Bucket=bucket
    )


def _normal_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy in one spelling: one-item lists as scalars, {"AWS": "*"} as "*"."""

    def one(value: Any) -> Any:
        if isinstance(value, list):
            items = sorted((one(v) for v in value), key=json.dumps)
            return items[0] if len(items) == 1 else items
        if isinstance(value, dict):
            if value == {"AWS": "*"}:
                return "*"
            return {k: one(v) for k, v in value.items()}
        return value

    return {
        "Version": policy.get("Version"),
        "Statement": [one(s) for s in _as_list(policy.get("Statement"))],
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _policy(project: Project, bucket: str) -> dict[str, Any] | None:
    found = project.aws.call(
        "s3", "get_bucket_policy", resource=f"bucket {bucket}", missing=True, Bucket=bucket
    )
    return _normal_policy(json.loads(found["Policy"])) if found else None


def _has_config(project: Project, bucket: str) -> bool:
    found = project.aws.call(
        "s3",
        "head_object",
        resource=f"s3://{bucket}/{CONFIG_KEY}",
        missing=True,
        Bucket=bucket,
        Key=CONFIG_KEY,
    )
    return found is not None


def _is_empty(project: Project, bucket: str) -> bool:
    found = project.aws.call(
        "s3", "list_objects_v2", resource=f"bucket {bucket}", Bucket=bucket, MaxKeys=1
    )
    return not found.get("Contents")


def read(project: Project, bucket: str) -> dict[str, Any] | None:
    if not _exists(project, bucket):
        return None
    # Side by side; the region is looked at first (a bucket elsewhere may answer the other
    # reads with errors of its own).
    got_region, *others = parallel.settled(
        lambda: _region(project, bucket),
        lambda: project.aws.call("s3", "get_public_access_block", resource=f"bucket {bucket}",
                                 missing=True, Bucket=bucket),
        lambda: _website(project, bucket),
        lambda: _policy(project, bucket),
        lambda: read_tags(project, bucket),
        lambda: _has_config(project, bucket),
    )
    region = got_region.value()
    if region != project.region:
        raise OperationFailed(
            f"site bucket {bucket} is in region {region}, but sdeliver.yaml deploys to "
            f"{project.region}: its website endpoint and DNS alias would not match",
            hint="delete or rename that bucket, or set region: in sdeliver.yaml",
        )
    block, website, policy, tags, config_json = (got.value() for got in others)
    return {
        "website": (
            {k: website[k] for k in ("IndexDocument", "ErrorDocument") if k in website}
            if website
            else None
        ),
        # Not declared, so not compared; kept when the website configuration is rewritten.
        "routing_rules": (website or {}).get("RoutingRules"),
        "public_access_block": (block or {}).get("PublicAccessBlockConfiguration"),
        "policy": policy,
        "tags": tags,
        "config_json": config_json,
    }


def _check_owner(project: Project, env: str, bucket: str, have: dict[str, Any]) -> None:
    """Adopt a bucket of this app, or an untagged one already a website or still empty."""
    owner = have["tags"].get(TAG_APP)
    if owner == project.app:
        return
    if owner is not None:
        raise OperationFailed(
            f"site bucket {bucket} belongs to sdeliver app {owner!r}, not {project.app!r}",
            hint=f"give environment {env} another domain, or destroy app {owner!r} first",
        )
    if not cloudfront(project) and have["website"] is None and not _is_empty(project, bucket):
        # Making it a public website would publish whatever private objects it holds.
        raise OperationFailed(
            f"site bucket {bucket} already exists, holds objects and is not a website: "
            "sdeliver will not make its content public",
            hint=f"empty it, or tag it {TAG_APP}={project.app} to adopt it as it is",
        )


# -- plan ----------------------------------------------------------------------------------

CALLS = {
    "tags": [call("s3.PutBucketTagging")],
    "public_access_block": [call("s3.PutPublicAccessBlock")],
    "website": [call("s3.PutBucketWebsite")],
    # Refused while a public access block set moments earlier spreads: see _put_policy.
    "policy": [call("s3.PutBucketPolicy"),
               call("s3.PutBucketPolicy", each="retry while the new access block spreads")],
    "config_json": [call("s3.PutObject")],
}
ORDER = list(CALLS)  # tags first: a half-made bucket is still known as ours


def plan(project: Project) -> list[Change]:
    if envs(project) and not cloudfront(project):
        check_account_allows_public_sites(project)
    return parallel.each(lambda env: _plan_env(project, env), envs(project))


def check_account_allows_public_sites(project: Project) -> None:
    """Fail in one line when the account's S3 Block Public Access (common in organisations)
    would refuse the website buckets' public-read policy or the public reads themselves.

    No setting there (NoSuchPublicAccessBlockConfiguration) means off. An emulator
    (endpoint URL) has no account-level setting; s3control's account-id host prefix does
    not reach one either."""
    if project.aws.endpoint_url:
        return
    found = project.aws.call(
        "s3control", "get_public_access_block", resource="the account's S3 Block Public Access",
        missing=True, AccountId=project.account,
    )
    block = (found or {}).get("PublicAccessBlockConfiguration") or {}
    on = [key for key in ("BlockPublicPolicy", "RestrictPublicBuckets") if block.get(key)]
    if on:
        raise OperationFailed(
            f"account {project.account} has S3 Block Public Access {' and '.join(on)} on: "
            "the public website buckets cannot be read",
            hint="turn those two off for the account (S3 console: Block Public Access settings "
            "for this account), or host the site with HTTPS (CloudFront) when sdeliver offers it",
        )


def _plan_env(project: Project, env: str) -> Change:
    bucket = project.site_bucket(env)
    if not cloudfront(project):
        website_zone(project.region)  # an unknown region fails here, before anything is made
    want = desired(project, env, bucket)
    have = read(project, bucket)
    if have is not None:
        _check_owner(project, env, bucket, have)
    fields = diff_fields(want, have)
    if have is not None and have["tags"] != want["tags"]:
        # Tags sdeliver does not set are the user's: keep them, add ours.
        merged = {**have["tags"], **want["tags"]}
        fields = [f for f in fields if f.field != "tags"]
        if merged != have["tags"]:
            fields.append(FieldChange("tags", have["tags"], merged))
    if have is not None and any(f.field == "config_json" for f in fields) and _has_release(
        project, env
    ):
        # config.json is release content: an environment that has had a release lost it
        # behind sdeliver's back, and the initial one would point the site at nothing.
        fields = [f for f in fields if f.field != "config_json"]
        project.progress.warn(
            f"site bucket {bucket} has no config.json, though {env} has releases: "
            f"run 'sdeliver deploy --env {env}' (or 'rollback') to publish its site again"
        )
    if have is not None and not fields:
        return Change(KIND, bucket, "none")
    new = {f.field: f.new for f in fields}
    routing_rules = have["routing_rules"] if have is not None else None

    def apply(p: Project) -> None:
        if have is None:
            create_bucket(p, bucket)
        _apply_fields(p, env, bucket, new, routing_rules)

    calls = ([call("s3.CreateBucket")] if have is None else []) + [
        c for name in ORDER if name in new for c in CALLS[name]
    ]
    shown = [_shown(f) for f in sorted(fields, key=lambda f: ORDER.index(f.field))]
    if have is None:
        shown = [FieldChange(f.field, None, f.new) for f in shown]
    return Change(KIND, bucket, "create" if have is None else "update", shown, calls, apply)


def _has_release(project: Project, env: str) -> bool:
    """Whether the environment's ledger holds any entry (one listing of at most one key)."""
    found = project.aws.call(
        "s3", "list_objects_v2", resource=f"the {env} release ledger", missing=True,
        Bucket=project.artifact_bucket, Prefix=Ledger(project, env).prefix, MaxKeys=1,
    )
    return bool((found or {}).get("Contents"))


def _shown(change: FieldChange) -> FieldChange:
    if change.field == "config_json":
        return FieldChange(CONFIG_KEY, None, "initial (no release yet)")
    return change


def _apply_fields(
    project: Project, env: str, bucket: str, new: dict[str, Any], routing_rules: Any
) -> None:
    res = f"bucket {bucket}"
    if "tags" in new:
        put_tags(project, bucket, new["tags"])
    if "public_access_block" in new:
        project.aws.call(
            "s3",
            "put_public_access_block",
            resource=res,
            Bucket=bucket,
            PublicAccessBlockConfiguration=new["public_access_block"],
        )
    if "website" in new:
        website = desired_website()
        if routing_rules:
            website["RoutingRules"] = routing_rules
        project.aws.call(
            "s3", "put_bucket_website", resource=res, Bucket=bucket, WebsiteConfiguration=website
        )
    if "policy" in new:
        _put_policy(project, bucket)
    if "config_json" in new:
        write_initial_config(project, env, bucket)


def _put_policy(project: Project, bucket: str) -> None:
    """PutBucketPolicy, waiting out the seconds a new public access block takes to apply."""
    deadline = time.monotonic() + project.aws.retry_max_seconds
    delay = 1.0
    while True:
        try:
            project.aws.call(
                "s3",
                "put_bucket_policy",
                resource=f"bucket {bucket}",
                Bucket=bucket,
                Policy=json.dumps(desired_policy(project, bucket)),
            )
            return
        except AwsError as err:
            if "BlockPublicPolicy" not in str(err):
                raise
            if time.monotonic() + delay > deadline:
                raise OperationFailed(
                    f"cannot make site bucket {bucket} public: S3 Block Public Access forbids "
                    "public bucket policies in this account",
                    hint="turn off BlockPublicPolicy and RestrictPublicBuckets in the account's "
                    "S3 Block Public Access settings (the bucket's own are set by sdeliver)",
                ) from None
            project.aws.sleep(delay)
            delay = min(delay * 2, 8)


def write_initial_config(project: Project, env: str, bucket: str) -> None:
    # If-None-Match: a deploy that wrote config.json meanwhile wins; nothing is overwritten.
    project.aws.call(
        "s3",
        "put_object",
        resource=f"s3://{bucket}/{CONFIG_KEY}",
        ignore=("PreconditionFailed", "ConditionalRequestConflict"),
        Bucket=bucket,
        Key=CONFIG_KEY,
        Body=config_bytes(initial_config(project, env)),
        ContentType=content_type(CONFIG_KEY),
        CacheControl="no-cache",
        IfNoneMatch="*",
    )


# -- prune and destroy ---------------------------------------------------------------------


def _maybe_site_bucket(project: Project, name: str) -> bool:
    """A cheap filter by name before reading tags: a domain in the zone, or a derived name."""
    zone = project.config.dns.zone if project.config.dns is not None else None
    if zone is not None and (name == zone or name.endswith("." + zone)):
        return True
    return name.startswith(f"{project.app}-") and name != project.artifact_bucket


def _site_env(project: Project, bucket: str) -> str | None:
    """The environment a bucket is tagged for as this app's site bucket, else None."""
    try:
        tags = read_tags(project, bucket)
    except AwsError as err:
        if err.code in {"403", "Forbidden", "AccessDenied"}:
            return None  # not ours to read, so not ours to delete
        raise
    return tags.get(TAG_ENV) if tags.get(TAG_APP) == project.app else None


def tagged_site_buckets(project: Project) -> dict[str, str]:
    """Every bucket tagged as a site bucket of this app: name -> its environment."""
    found: dict[str, str] = {}
    for item in project.aws.paginate("s3", "list_buckets", "Buckets", resource="buckets"):
        name = item["Name"]
        if _maybe_site_bucket(project, name):
            env = _site_env(project, name)
            if env is not None:
                found[name] = env
    return found


def _delete(bucket: str, env: str) -> Change:
    def apply(p: Project) -> None:
        empty_bucket(p, bucket)
        p.aws.call("s3", "delete_bucket", resource=f"bucket {bucket}", missing=True, Bucket=bucket)

    fields = [FieldChange("env", env, None)]
    calls = [call("s3.DeleteObjects", each="1,000 objects"), call("s3.DeleteBucket")]
    return Change(KIND, bucket, "delete", fields, calls, apply)


def prune(project: Project) -> list[Change]:
    """Site buckets of environments no longer declared (or of a site no longer declared)."""
    keep = {project.site_bucket(env) for env in envs(project)}
    return [
        _delete(bucket, env)
        for bucket, env in sorted(tagged_site_buckets(project).items())
        if bucket not in keep
    ]


def destroy(project: Project) -> list[Change]:
    """Empty and delete every site bucket tagged for this app (declared or left behind)."""
    found = tagged_site_buckets(project)
    for env in project.config.environments:
        bucket = project.site_bucket(env)
        # A declared bucket the name filter missed (dns.zone changed since it was made).
        if bucket not in found and _site_env(project, bucket) is not None:
            found[bucket] = env
    return [_delete(bucket, env) for bucket, env in sorted(found.items())]
