"""Publishing site content to an environment's bucket, exactly.

Recursive; only files whose MD5 differs from the object's ETag are uploaded (in parallel,
streamed); objects no longer in the content are deleted; each file gets its Content-Type;
`index.html` and `config.json` are served with `Cache-Control: no-cache`; `config.json` is
written last, so a visitor never sees a config that points at an API the files don't match.
The content comes from a directory (deploy) or from a release's stored `site.zip`
(promote, rollback): the same bytes either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .project import Project

CONFIG_JSON = "config.json"
NO_CACHE = {"index.html", CONFIG_JSON}
UPLOAD_THREADS = 16
mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("application/json", ".json")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("application/wasm", ".wasm")


@dataclass(frozen=True)
class SiteFile:
    key: str  # POSIX path relative to the site root, as the object key
    size: int
    md5: str  # hex, what S3 reports as the ETag of a single-part upload
    open: Callable[[], IO[bytes]]


def content_type(key: str) -> str:
    kind, _ = mimetypes.guess_type(key)
    textual = {"application/javascript", "application/json"}
    if kind and (kind.startswith("text/") or kind in textual):
        return f"{kind}; charset=utf-8"
    return kind or "application/octet-stream"


def _md5_of(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.md5()  # noqa: S324 - compared with S3 ETags, not used for security
    size = 0
    for chunk in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def files_from_zip(path: Path) -> list[SiteFile]:
    """The files of a stored site.zip (each opened on demand, never all in memory).

    The archive is opened once: opening it parses its whole central directory, so an
    open per file would make publishing quadratic in the number of files. Members are
    read through one shared ZipFile, which serialises seeks on its file and so may be
    read from the upload threads at once; each upload holds one file in memory, so
    botocore can measure, checksum and resend it without decompressing it again.
    """
    archive = zipfile.ZipFile(path)
    infos = sorted(archive.infolist(), key=lambda i: i.filename)
    result = []
    for info in infos:
        if info.is_dir() or info.filename == CONFIG_JSON:
            continue
        with archive.open(info) as stream:
            md5, size = _md5_of(stream)

        def opener(member: zipfile.ZipInfo = info) -> IO[bytes]:
            return io.BytesIO(archive.read(member))

        result.append(SiteFile(info.filename, size, md5, opener))
    return result


def _listing(project: Project, bucket: str) -> dict[str, str]:
    """Every object's ETag, from one paginated listing of the bucket."""
    return {
        item["Key"]: item["ETag"].strip('"')
        for item in project.aws.paginate(
            "s3", "list_objects_v2", "Contents", resource=f"bucket {bucket}", Bucket=bucket
        )
    }


@dataclass
class PublishResult:
    uploaded: int
    deleted: int
    unchanged: int
    bytes: int

    def to_json(self) -> dict[str, int]:
        return {
            "uploaded": self.uploaded,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "bytes": self.bytes,
        }


def _put(project: Project, bucket: str, key: str, body: IO[bytes] | bytes, size: int) -> None:
    extra: dict[str, Any] = {"ContentType": content_type(key)}
    if key.rsplit("/", 1)[-1] in NO_CACHE:
        extra["CacheControl"] = "no-cache"
    project.aws.call(
        "s3",
        "put_object",
        resource=f"s3://{bucket}/{key}",
        Bucket=bucket,
        Key=key,
        Body=body,
        **extra,
    )
    project.aws.add_uploaded(size)


def publish(
    project: Project, bucket: str, files: list[SiteFile], config: dict[str, Any]
) -> PublishResult:
    existing = _listing(project, bucket)
    wanted = {f.key for f in files} | {CONFIG_JSON}
    changed = [f for f in files if existing.get(f.key) != f.md5]

    def upload(item: SiteFile) -> int:
        with item.open() as stream:
            _put(project, bucket, item.key, stream, item.size)
        return item.size

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        sent = sum(pool.map(upload, changed))
    stale = sorted(key for key in existing if key not in wanted)
    for start in range(0, len(stale), 1000):
        project.aws.call(
            "s3",
            "delete_objects",
            resource=f"bucket {bucket}",
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]], "Quiet": True},
        )
    write_config(project, bucket, config, existing.get(CONFIG_JSON))
    return PublishResult(len(changed), len(stale), len(files) - len(changed), sent)


def config_bytes(config: dict[str, Any]) -> bytes:
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def write_config(
    project: Project, bucket: str, config: dict[str, Any], etag: str | None = None
) -> bool:
    body = config_bytes(config)
    if etag == hashlib.md5(body).hexdigest():  # noqa: S324 - ETag comparison
        return False
    _put(project, bucket, CONFIG_JSON, body, len(body))
    return True
