"""S3 as sdeliver uses it: whole objects read and written by key.

The body of a GET is read here, inside the AWS layer, so that a stream cut short is
retried (the whole GET, a few times) and otherwise becomes an AwsError like any other
answer, never a botocore exception in release code. "Not there" is None.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import IO

import botocore.exceptions

from . import Aws

STREAM_ATTEMPTS = 3  # a body cut short: the whole GET again, then an error


@dataclass(frozen=True)
class S3Object:
    body: bytes
    etag: str  # as S3 answers it, quoted
    metadata: dict[str, str] = field(default_factory=dict)


def _where(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def get(
    aws: Aws, bucket: str, key: str, *, resource: str = "", missing: bool = True
) -> S3Object | None:
    """The object's bytes, ETag and metadata; None when the key (or bucket) is not there
    (with missing=False, the AwsError that says so)."""
    where = resource or _where(bucket, key)
    for attempt in range(1, STREAM_ATTEMPTS + 1):
        found = aws.call("s3", "get_object", resource=where, missing=missing,
                         Bucket=bucket, Key=key)
        if found is None:
            return None
        try:
            body = bytes(found["Body"].read())
        except botocore.exceptions.BotoCoreError as err:  # the body's stream cut short
            if attempt == STREAM_ATTEMPTS:
                raise aws.translate(err, "s3", "get_object", where) from None
            aws.log(f"s3.get_object on {where}: the body was cut short; reading it again")
            continue
        return S3Object(body, str(found.get("ETag") or ""), dict(found.get("Metadata") or {}))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def get_bytes(aws: Aws, bucket: str, key: str, *, resource: str = "") -> bytes | None:
    found = get(aws, bucket, key, resource=resource)
    return None if found is None else found.body


def read(aws: Aws, bucket: str, key: str, *, resource: str = "") -> bytes:
    """An object that must exist (else the AwsError saying it does not)."""
    found = get(aws, bucket, key, resource=resource, missing=False)
    assert found is not None  # missing=False raises instead
    return found.body


def download(aws: Aws, bucket: str, key: str, out: IO[bytes], *, resource: str = "") -> None:
    """Stream an object (it may be large) into `out`; the key must exist."""
    where = resource or _where(bucket, key)
    found = aws.call("s3", "get_object", resource=where, Bucket=bucket, Key=key)
    try:
        shutil.copyfileobj(found["Body"], out, 1024 * 1024)
    except botocore.exceptions.BotoCoreError as err:
        raise aws.translate(err, "s3", "get_object", where) from None
