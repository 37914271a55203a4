"""Input and output artifacts, read and written with the job's own artifact credentials.

CodePipeline hands every job short-lived credentials scoped to that job's artifacts; the
worker's role has no access to the pipeline's artifacts at all, so a job can only touch
its own. Archives come from a source we do not control (a push to the repository), so
extraction refuses absolute paths, `..` and links that lead out of the target directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..aws import Aws, s3
from ..errors import OperationFailed
from ..package import DEFAULT_EXCLUDE, package_directory
from ..release import CACHE
from .job import Artifact, Credentials

# Far more than any source tree; a bound on what a hostile archive can make us write.
MAX_EXTRACTED_BYTES = 4 * 1024**3


def artifact_aws(credentials: Credentials, *, region: str, endpoint_url: str | None) -> Aws:
    """An `Aws` signing with the job's artifact credentials (same retries and errors)."""
    return Aws(region=region, endpoint_url=endpoint_url, credentials=credentials)


def download(aws: Aws, artifact: Artifact, target: Path) -> Path:
    """Fetch the artifact's zip and extract it into `target` (safely)."""
    archive = target.with_name(f"{target.name}.zip")
    with archive.open("wb") as fh:
        s3.download(aws, artifact.bucket, artifact.key, fh,
                    resource=f"input artifact {artifact.name}")
    extract(archive, target)
    archive.unlink()
    return target


def upload(aws: Aws, artifact: Artifact, source: Path, *, kms_key: str | None = None) -> None:
    """Zip the job's tree as its output artifact: `.sdeliver/release.json` goes on to the
    deploy actions, the build cache beside it does not (`source` is the job's own copy)."""
    shutil.rmtree(source / CACHE, ignore_errors=True)
    exclude = tuple(p for p in DEFAULT_EXCLUDE if p != ".sdeliver")
    package = package_directory(source, exclude=exclude, key=f"output artifact {artifact.name}")
    extra: dict[str, Any] = {}
    if kms_key:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
    aws.call(
        "s3", "put_object", resource=f"output artifact {artifact.name}",
        Bucket=artifact.bucket, Key=artifact.key, Body=package.data, **extra,
    )


def _unsafe(name: str) -> str | None:
    """Why an entry name may not be extracted, or None when it may."""
    if "\x00" in name:
        return "has a NUL character"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "climbs out with '..'"
    return None


def extract(archive: Path, target: Path) -> None:
    """Extract every entry under `target`, or nothing that escapes it (OperationFailed)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise OperationFailed(f"artifact {archive.name} is not a zip archive") from None
    root = target.resolve()
    root.mkdir(parents=True, exist_ok=True)
    with zf:
        members = zf.infolist()
        for info in members:
            why = _unsafe(info.filename)
            if why:
                raise OperationFailed(f"artifact entry {info.filename!r} {why}: refused")
        if sum(i.file_size for i in members) > MAX_EXTRACTED_BYTES:
            raise OperationFailed(f"artifact {archive.name} expands beyond 4 GiB: refused")
        for info in members:
            dest = root / info.filename.replace("\\", "/")
            mode = info.external_attr >> 16
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            _inside(root, dest.parent.resolve(), info.filename)  # an earlier link on the way
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode("utf-8", "replace")
                _inside(root, (dest.parent / link).resolve(), info.filename, link=link)
                os.symlink(link, dest)
                continue
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
            if mode & stat.S_IXUSR:
                dest.chmod(0o755)


def _inside(root: Path, path: Path, name: str, *, link: str | None = None) -> None:
    if path != root and root not in path.parents:
        what = f"is a link to {link!r}, outside" if link else "leads outside"
        raise OperationFailed(f"artifact entry {name!r} {what} the artifact: refused")
