"""Publishing site content to an environment's bucket, exactly.

Recursive; only files whose MD5 differs from the object's ETag are uploaded (in parallel,
streamed); objects no longer in the content are deleted; each file gets its Content-Type;
`index.html` and `config.json` are served with `Cache-Control: no-cache`; `config.json` is
written last, so a visitor never sees a config that points at an API the files don't match.
Because it is written last, a config.json that names the release being published says the
bucket holds its files already: then nothing is listed or uploaded (one GET, not a listing).
The content comes from a directory (deploy) or from a release's stored `site.zip`
(promote, rollback): the same bytes either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import botocore.exceptions

from .project import Project

CONFIG_JSON = "config.json"
NO_CACHE = {"index.html", CONFIG_JSON}
UPLOAD_THREADS = 32
# Metadata on config.json while a publish changes the files it describes.
PUBLISHING = "sdeliver-publishing"
mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("application/json", ".json")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("application/wasm", ".wasm")


@dataclass(frozen=True)
class SiteFile:
    key: str  # POSIX path relative to the site root, as the object key
    size: int
    open: Callable[[], IO[bytes]]

    @cached_property
    def md5(self) -> str:
        """Hex, what S3 reports as the ETag of a single-part upload; read only when an
        object of that key exists to compare with (a first publish reads no file twice)."""
        with self.open() as stream:
            return _md5_of(stream)[0]


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


class SiteFiles(list[SiteFile]):
    """The files of one site.zip; `close()` (or leaving a `with` block) closes the zip."""

    def __init__(self, files: list[SiteFile], archive: zipfile.ZipFile) -> None:
        super().__init__(files)
        self._archive = archive

    def close(self) -> None:
        self._archive.close()

    def __enter__(self) -> SiteFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def files_from_zip(path: Path) -> SiteFiles:
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

        def opener(member: zipfile.ZipInfo = info) -> IO[bytes]:
            return io.BytesIO(archive.read(member))

        result.append(SiteFile(info.filename, info.file_size, opener))
    return SiteFiles(result, archive)


def listing(project: Project, bucket: str) -> dict[str, str]:
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


def _put(
    project: Project, bucket: str, key: str, body: IO[bytes] | bytes, size: int,
    metadata: dict[str, str] | None = None,
) -> None:
    extra: dict[str, Any] = {"ContentType": content_type(key)}
    if key.rsplit("/", 1)[-1] in NO_CACHE:
        extra["CacheControl"] = "no-cache"
    if metadata:
        extra["Metadata"] = metadata
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


@dataclass(frozen=True)
class Published:
    """What the bucket's config.json says about the files it was written for."""

    body: bytes | None  # None: no config.json, or it could not be read
    release: str | None  # the release whose files the bucket held when it was written
    dirty: bool  # a publish began changing files after it was written, and did not finish

    @property
    def etag(self) -> str | None:
        return hashlib.md5(self.body).hexdigest() if self.body is not None else None  # noqa: S324


def read_published(project: Project, bucket: str) -> Published:
    """One GET of config.json. Absent, not JSON or naming no release: trusted for nothing.
    (An S3 website's bucket; sites.read_published knows both hostings.)"""
    try:
        found = project.aws.call(
            "s3", "get_object", resource=f"s3://{bucket}/{CONFIG_JSON}", missing=True,
            Bucket=bucket, Key=CONFIG_JSON,
        )
        body = None if found is None else bytes(found["Body"].read())
    except botocore.exceptions.BotoCoreError as err:  # the body's stream cut short
        raise project.aws.translate(
            err, "s3", "get_object", f"s3://{bucket}/{CONFIG_JSON}"
        ) from None
    # Any other error (access denied, throttled) goes on: a publish that cannot read
    # config.json cannot mark it either, and an unmarked publish cut short would be trusted.
    if found is None or body is None:
        return Published(None, None, False)
    try:
        release = json.loads(body).get("release")
    except (ValueError, AttributeError):
        release = None
    dirty = PUBLISHING in (found.get("Metadata") or {})
    return Published(body, release if isinstance(release, str) else None, dirty)


def publish(
    project: Project,
    bucket: str,
    files: list[SiteFile],
    config: dict[str, Any],
    *,
    force: bool = False,
    prior: Prior | None = None,
) -> PublishResult:
    """Make the bucket hold exactly `files`, then `config` as config.json.

    config.json is written last, so when it names the release being published (and no
    publish was cut short since) the bucket holds that release's files already: nothing is
    listed or uploaded. `force` lists and compares every object anyway, to repair objects
    changed behind sdeliver's back. `prior`: config.json and the listing as this command
    read them (and changed them since) while it held the lease: not read again.
    """
    published = prior.published if prior is not None else read_published(project, bucket)
    release = config.get("release")
    if not force and release and published.release == release and not published.dirty:
        write_config(project, bucket, config, published.etag)
        return PublishResult(0, 0, len(files), 0)
    existing = dict(prior.listing) if prior is not None and not force else listing(project, bucket)
    existing.pop(CONFIG_JSON, None)
    wanted = {f.key for f in files}
    mark = _Mark(project, bucket, published, release)

    def upload(item: SiteFile) -> int:
        # In the pool: the MD5 is read here, and only when there is an object to compare.
        if item.key in existing and existing[item.key] == item.md5:
            return -1
        mark.once()
        with item.open() as stream:
            _put(project, bucket, item.key, stream, item.size)
        return item.size

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        sent = [size for size in pool.map(upload, files) if size >= 0]
    stale = sorted(key for key in existing if key not in wanted)
    if stale:
        mark.once()
    for start in range(0, len(stale), 1000):
        project.aws.call(
            "s3",
            "delete_objects",
            resource=f"bucket {bucket}",
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]], "Quiet": True},
        )
    # A marked config.json is written again even when its body is the same: to unmark it.
    marked = mark.made or published.dirty
    write_config(project, bucket, config, None if marked else published.etag)
    return PublishResult(len(sent), len(stale), len(files) - len(sent), sum(sent))


@dataclass(frozen=True)
class Prior:
    """What a publish would read first — config.json and the bucket's listing — as the same
    command read (and, by uploading, changed) them a moment ago under its lease."""

    published: Published
    listing: dict[str, str]  # key -> ETag (MD5 of a simple upload)


def add_new_files(
    project: Project,
    bucket: str,
    files: list[SiteFile],
    release_id: str,
    stop: threading.Event,
    added: list[str],
    shown: Published | None = None,
) -> Prior | None:
    """Upload only the files whose keys the bucket does not hold yet, appending each key to
    `added` once it is up: nothing links to them until the release's index.html and
    config.json are written by `publish`. Setting `stop` ends the uploads early.

    Returns what the bucket then holds (for `publish`), or None when it holds the release
    already (nothing read but config.json). shown: config.json as the caller read it under
    its lease (not read again). (An S3 website's bucket; sites.add_new_files knows both
    hostings.)"""
    shown = shown or read_published(project, bucket)
    if shown.release == release_id and not shown.dirty:
        return None  # the bucket holds this release already
    existing = listing(project, bucket)
    new = [f for f in files if f.key not in existing]
    mark = _Mark(project, bucket, shown, release_id)  # before the first object changes

    def upload(item: SiteFile) -> None:
        if stop.is_set():
            return
        mark.once()
        # Counted before the PUT: one whose answer was lost may have landed all the same
        # (removing a key that is not there is no error). list.append is thread-safe.
        added.append(item.key)
        try:
            with item.open() as stream:
                _put(project, bucket, item.key, stream, item.size)
        except BaseException:
            stop.set()  # the rest would be removed again anyway
            raise

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        for _ in pool.map(upload, new):
            pass
    if stop.is_set():
        return None
    now = Published(shown.body, shown.release, shown.dirty or mark.made)
    return Prior(now, {**existing, **{f.key: f.md5 for f in new}})


class _Mark:
    """Marks config.json before the first object changes: until config.json is written
    again at the end, no one trusts it to describe the files (a publish cut short leaves
    a mix of two releases under the old config.json).

    Only a config.json that names a release needs it: no other is ever trusted.
    """

    def __init__(self, project: Project, bucket: str, published: Published,
                 release: str | None) -> None:
        self.project, self.bucket, self.release = project, bucket, release
        self.body = published.body if published.release and not published.dirty else None
        self.made = False
        self.lock = threading.Lock()

    def once(self) -> None:
        if self.body is None:
            return
        with self.lock:
            if self.made:
                return
            # The same body, so visitors see no change: only its metadata says "publishing".
            _put(self.project, self.bucket, CONFIG_JSON, self.body, len(self.body),
                 metadata={PUBLISHING: self.release or "unknown"})
            self.made = True


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
