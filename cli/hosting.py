"""Releases of a CloudFront-hosted site (`site.hosting: cloudfront`, see resources/cdn.py).

Each release's site lives under its own prefix of the private bucket,
`releases/<release-id>/`, with its own `config.json`; objects there are written once and
never rewritten. The environment's KeyValueStore names the live release, and the
distribution's CloudFront Function serves `/x` from `releases/<live>/x`. So a deploy,
promote or rollback uploads what the prefix lacks (nothing, for a release the bucket
held before) and then switches in ONE write (a PutKey); visitors see the old release or
the new one, never a mix. After a successful move, still under its lease, the sites of
releases beyond `site.retention` are removed (`prune`, called by operations/moves.py).
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .project import Project
from .publish import (
    CONFIG_JSON,
    UPLOAD_THREADS,
    PublishResult,
    SiteFile,
    _put,
    config_bytes,
)
from .resources import cdn


def _listing(project: Project, bucket: str, prefix: str) -> dict[str, str]:
    return {
        item["Key"]: item["ETag"].strip('"')
        for item in project.aws.paginate(
            "s3", "list_objects_v2", "Contents", resource=f"s3://{bucket}/{prefix}",
            Bucket=bucket, Prefix=prefix,
        )
    }


def upload_release(
    project: Project,
    bucket: str,
    files: list[SiteFile],
    release_id: str,
    *,
    force: bool = False,
    stop: threading.Event | None = None,
    added: list[str] | None = None,
) -> tuple[int, int]:
    """Upload the release's files its prefix lacks (force: also those whose bytes differ):
    (files uploaded, bytes)."""
    prefix = cdn.release_prefix(release_id)
    existing = _listing(project, bucket, prefix)

    def upload(item: SiteFile) -> int:
        key = prefix + item.key
        if stop is not None and stop.is_set():
            return -1
        if key in existing and (not force or existing[key] == item.md5):
            return -1
        if added is not None:
            added.append(key)  # before the PUT: one whose answer was lost may have landed
        with item.open() as stream:
            _put(project, bucket, key, stream, item.size)
        return item.size

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        sent = [size for size in pool.map(upload, files) if size >= 0]
    return len(sent), sum(sent)


def add_release_files(
    project: Project,
    bucket: str,
    files: list[SiteFile],
    release_id: str,
    stop: threading.Event,
    added: list[str],
) -> None:
    """deploy's early upload (publish.add_new_files): nothing serves the prefix until the
    switch, so all of it may go up while the function update settles."""
    upload_release(project, bucket, files, release_id, stop=stop, added=added)


def publish_release(
    project: Project,
    env: str,
    files: list[SiteFile],
    config: dict[str, Any],
    release_id: str,
    *,
    force: bool = False,
) -> PublishResult:
    """The release's files and config.json under its prefix, then the one-write switch."""
    bucket = project.site_bucket(env)
    uploaded, sent = upload_release(project, bucket, files, release_id, force=force)
    key = cdn.release_prefix(release_id) + CONFIG_JSON
    body = config_bytes(config)
    found = project.aws.call("s3", "head_object", resource=f"s3://{bucket}/{key}", missing=True,
                             Bucket=bucket, Key=key)

    if found is None or found["ETag"].strip('"') != hashlib.md5(body).hexdigest():  # noqa: S324
        _put(project, bucket, key, body, len(body))
    cdn.switch_release(project, env, release_id)
    return PublishResult(uploaded, 0, len(files) - uploaded, sent)


# -- retention -----------------------------------------------------------------------------


def release_prefixes(project: Project, bucket: str) -> list[str]:
    """The release ids the bucket holds a site for (its `releases/<id>/` prefixes)."""
    found = project.aws.paginate(
        "s3", "list_objects_v2", "CommonPrefixes", resource=f"s3://{bucket}/{cdn.RELEASES}/",
        Bucket=bucket, Prefix=f"{cdn.RELEASES}/", Delimiter="/",
    )
    return sorted(item["Prefix"][len(cdn.RELEASES) + 1:].rstrip("/") for item in found)


def prune(project: Project, env: str, held: list[str], keep: list[str]) -> list[str]:
    """Remove from the environment's bucket the sites of the releases in `held` that are
    not in `keep`; the live release is never removed, whatever `keep` says (it is read
    again here). Only under the environment's lease, after the move's entry is recorded:
    no other command is uploading to, or switching to, a prefix meanwhile."""
    bucket = project.site_bucket(env)
    live = cdn.live_release(project, env)
    doomed = [r for r in held if r not in keep and r != live]
    for release_id in doomed:
        prefix = cdn.release_prefix(release_id)
        keys = list(_listing(project, bucket, prefix))
        for start in range(0, len(keys), 1000):
            project.aws.call(
                "s3", "delete_objects", resource=f"s3://{bucket}/{prefix}", Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]],
                        "Quiet": True},
            )
    return doomed
