"""The artifact bucket: the release ledger, locks and release artifacts live here.

Private, encrypted, versioned, Block Public Access on, non-TLS access denied.
"""

from __future__ import annotations

import json
from typing import Any

from .. import parallel
from ..aws import tags_dict
from ..errors import OperationFailed
from ..plan import Change, FieldChange, call, diff_fields
from ..project import Project

KIND = "artifact-bucket"

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def desired_policy(project: Project, bucket: str) -> dict[str, Any]:
    arn = f"arn:{project.aws.partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


LOCK_RULE_ID = "sdeliver-lock-versions"


def lock_rule(project: Project) -> dict[str, Any]:
    """Every lease taken and released leaves an old version behind in the versioned bucket:
    expire those (never anything under releases/ or artifacts/)."""
    return {
        "ID": LOCK_RULE_ID,
        "Filter": {"Prefix": f"{project.prefix}/locks/"},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }


def read_lifecycle(project: Project, bucket: str) -> list[dict[str, Any]]:
    found = project.aws.call(
        "s3", "get_bucket_lifecycle_configuration", resource=f"bucket {bucket}", missing=True,
        ignore=("NoSuchLifecycleConfiguration",), Bucket=bucket,
    )
    return list((found or {}).get("Rules", []))


def _our_rule(rules: list[dict[str, Any]]) -> dict[str, Any] | None:
    rule = next((r for r in rules if r.get("ID") == LOCK_RULE_ID), None)
    if rule is None:
        return None
    keys = ("ID", "Filter", "Status", "NoncurrentVersionExpiration", "Expiration")
    return {k: rule[k] for k in keys if k in rule}


def create_bucket(project: Project, bucket: str) -> None:
    """CreateBucket with the LocationConstraint every region but us-east-1 requires."""
    params: dict[str, Any] = {"Bucket": bucket}
    if project.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": project.region}
    project.aws.call(
        "s3",
        "create_bucket",
        resource=f"bucket {bucket}",
        ignore=("BucketAlreadyOwnedByYou",),
        **params,
    )
    project.aws.wait("s3", "bucket_exists", resource=f"bucket {bucket}", delay=1, Bucket=bucket)


def put_tags(project: Project, bucket: str, tags: dict[str, str]) -> None:
    project.aws.call(
        "s3",
        "put_bucket_tagging",
        resource=f"bucket {bucket}",
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
    )


def read_tags(project: Project, bucket: str) -> dict[str, str]:
    found = project.aws.call(
        "s3", "get_bucket_tagging", resource=f"bucket {bucket}", missing=True, Bucket=bucket
    )
    return tags_dict(found["TagSet"]) if found else {}


def bucket_exists(project: Project, bucket: str) -> bool:
    return (
        project.aws.call(
            "s3", "head_bucket", resource=f"bucket {bucket}", missing=True, Bucket=bucket
        )
        is not None
    )


def read(project: Project, bucket: str) -> dict[str, Any] | None:
    if not bucket_exists(project, bucket):
        return None
    s3 = "s3"
    res = f"bucket {bucket}"
    versioning, policy, protection, tags, lifecycle = parallel.together(
        lambda: project.aws.call(s3, "get_bucket_versioning", resource=res, Bucket=bucket),
        lambda: project.aws.call(s3, "get_bucket_policy", resource=res, missing=True,
                                 Bucket=bucket),
        lambda: read_protection(project, bucket),
        lambda: read_tags(project, bucket),
        lambda: read_lifecycle(project, bucket),
    )
    return {
        "versioning": versioning.get("Status", "Disabled"),
        **protection,
        "policy": json.loads(policy["Policy"]) if policy else None,
        "tags": tags,
        "lifecycle": _our_rule(lifecycle),
    }


def read_protection(project: Project, bucket: str) -> dict[str, Any]:
    """The bucket's default encryption and public access block, as `desired` names them."""
    res = f"bucket {bucket}"
    encryption, block = parallel.together(
        lambda: project.aws.call(
            "s3", "get_bucket_encryption", resource=res, missing=True, Bucket=bucket
        ),
        lambda: project.aws.call(
            "s3", "get_public_access_block", resource=res, missing=True, Bucket=bucket
        ),
    )
    rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None
    return {
        "encryption": algorithm,
        "public_access_block": (block or {}).get("PublicAccessBlockConfiguration"),
    }


def desired(project: Project, bucket: str) -> dict[str, Any]:
    return {
        "versioning": "Enabled",
        "encryption": "AES256",
        "public_access_block": BLOCK_ALL,
        "policy": desired_policy(project, bucket),
        "tags": project.tags(),
        "lifecycle": lock_rule(project),
    }


# The call each field's change makes, in the order apply makes them; True: what S3 gives
# every new bucket, so a create makes the call only where the endpoint did not (see apply).
WRITES = {
    "public_access_block": ("PutPublicAccessBlock", True),
    "encryption": ("PutBucketEncryption", True),
    "versioning": ("PutBucketVersioning", False),
    "policy": ("PutBucketPolicy", False),
    "lifecycle": ("PutBucketLifecycleConfiguration", False),
    "tags": ("PutBucketTagging", False),
}


def plan(project: Project) -> list[Change]:
    bucket = project.artifact_bucket
    want = desired(project, bucket)
    have = read(project, bucket)
    if have is not None and have["tags"].get("sdeliver:app") not in (None, project.app):
        raise OperationFailed(
            f"artifact bucket {bucket} belongs to sdeliver app {have['tags']['sdeliver:app']!r}",
            hint="set artifacts.bucket in sdeliver.yaml to a bucket of this app",
        )
    fields = diff_fields(want, have)
    if have is not None and have["tags"] != want["tags"]:
        # Tags sdeliver does not set are the user's: keep them, add ours.
        merged = {**have["tags"], **want["tags"]}
        fields = [f for f in fields if f.field != "tags"]
        if merged != have["tags"]:
            fields.append(FieldChange("tags", have["tags"], merged))
    if have is not None and not fields:
        return [Change(KIND, bucket, "none")]
    changing = {f.field for f in fields}

    def apply(p: Project) -> None:
        res = f"bucket {bucket}"
        todo = set(changing)
        if have is None:
            create_bucket(p, bucket)
            # S3 gives every new bucket SSE-S3 and all public access blocked (since 2023):
            # two reads instead of two writes that would change nothing. Emulators may not.
            fresh = read_protection(p, bucket)
            todo -= {k for k, v in fresh.items() if v == want[k]}
        if "public_access_block" in todo:
            p.aws.call(
                "s3",
                "put_public_access_block",
                resource=res,
                Bucket=bucket,
                PublicAccessBlockConfiguration=BLOCK_ALL,
            )
        if "encryption" in todo:
            p.aws.call(
                "s3",
                "put_bucket_encryption",
                resource=res,
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
        if "versioning" in changing:
            p.aws.call(
                "s3",
                "put_bucket_versioning",
                resource=res,
                Bucket=bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )
        if "policy" in changing:
            p.aws.call(
                "s3",
                "put_bucket_policy",
                resource=res,
                Bucket=bucket,
                Policy=json.dumps(want["policy"]),
            )
        if "lifecycle" in changing:
            # The user's own rules stay; ours is added or replaced by its ID.
            others = [r for r in read_lifecycle(p, bucket) if r.get("ID") != LOCK_RULE_ID]
            p.aws.call(
                "s3", "put_bucket_lifecycle_configuration", resource=res, Bucket=bucket,
                LifecycleConfiguration={"Rules": [*others, lock_rule(p)]},
            )
        if "tags" in changing:
            merged_tags = next(f.new for f in fields if f.field == "tags")
            put_tags(p, bucket, merged_tags)

    calls = ([call("s3.CreateBucket")] if have is None else []) + [
        call(f"s3.{operation}", when="unless S3's default" if have is None and default else "")
        for name, (operation, default) in WRITES.items() if name in changing
    ]
    if have is None:
        fields = [FieldChange(f.field, None, f.new) for f in fields]
    return [Change(KIND, bucket, "create" if have is None else "update", fields, calls, apply)]


def destroy(project: Project) -> list[Change]:
    """Empty (every object version) and delete the bucket: the whole release ledger."""
    bucket = project.artifact_bucket
    if not bucket_exists(project, bucket):
        return []

    def apply(p: Project) -> None:
        empty_bucket(p, bucket)
        p.aws.call("s3", "delete_bucket", resource=f"bucket {bucket}", missing=True, Bucket=bucket)

    calls = [call("s3.DeleteObjects", each="1,000 object versions"), call("s3.DeleteBucket")]
    return [Change(KIND, bucket, "delete", [], calls, apply)]


def empty_bucket(project: Project, bucket: str) -> None:
    batch: list[dict[str, str]] = []

    def flush() -> None:
        if batch:
            project.aws.call(
                "s3",
                "delete_objects",
                resource=f"bucket {bucket}",
                Bucket=bucket,
                Delete={"Objects": list(batch), "Quiet": True},
            )
            batch.clear()

    for key in ("Versions", "DeleteMarkers"):
        for item in project.aws.paginate(
            "s3", "list_object_versions", key, resource=f"bucket {bucket}", Bucket=bucket
        ):
            batch.append({"Key": item["Key"], "VersionId": item["VersionId"]})
            if len(batch) == 1000:
                flush()
    flush()
