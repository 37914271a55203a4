"""Reproducible zip packages: the same files give the same bytes, on any machine, any day.

Lambda identifies code by the SHA-256 of the zip (`CodeSha256`), and a release records it;
so the package must depend on the files' paths, contents and executable bit only — never
on mtimes, the order the file system lists entries in, umask, or who ran the build.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import os
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import OperationFailed

DEFAULT_EXCLUDE: tuple[str, ...] = ("__pycache__", "*.pyc", ".git", ".DS_Store")

# 1980-01-01 00:00:00 is the earliest time a zip entry can carry.
EPOCH = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Package:
    data: bytes  # the zip
    sha256_b64: str  # what Lambda reports as CodeSha256
    sha256_hex: str
    files: int

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class _Entry:
    name: str  # POSIX path inside the zip
    path: Path  # the file to read (a symlink inside the source is read through)
    executable: bool
    size: int


def sha256_b64(data: bytes) -> str:
    """The digest as Lambda writes it: base64 of the raw SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def sha256_file_digest(path: Path) -> tuple[str, str]:
    """(hex, base64) SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest(), base64.b64encode(digest.digest()).decode("ascii")


def package_directory(
    source: Path,
    *,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    key: str = "function.source",
) -> Package:
    """Zip every file under `source` reproducibly; `key` names the setting in error messages."""
    entries = collect(source, exclude=tuple(exclude), key=key)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            archive_file(archive, entry)
    data = buffer.getvalue()
    digest = hashlib.sha256(data)
    return Package(
        data=data,
        sha256_b64=base64.b64encode(digest.digest()).decode("ascii"),
        sha256_hex=digest.hexdigest(),
        files=len(entries),
    )


def archive_file(archive: zipfile.ZipFile, entry: _Entry) -> None:
    info = zipfile.ZipInfo(entry.name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    # The private name is the only way to set a level per entry before Python 3.13.
    setattr(info, "_compresslevel", COMPRESS_LEVEL)  # noqa: B010
    info.create_system = 3  # unix, so the permission bits below mean the same everywhere
    mode = 0o755 if entry.executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.file_size = entry.size  # decides zip64 up front; no extra fields below 2 GiB
    with entry.path.open("rb") as src, archive.open(info, "w") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def collect(source: Path, *, exclude: tuple[str, ...], key: str) -> list[_Entry]:
    """Every file to package, sorted by its path in the zip."""
    label = f"{key} {source.name}/"
    if not source.exists():
        raise OperationFailed(f"{label} does not exist in {source.parent}")
    if not source.is_dir():
        raise OperationFailed(f"{label} is not a directory (in {source.parent})")
    root = source.resolve()
    entries: list[_Entry] = []
    _walk(root, root, "", exclude, entries, ancestors=(root,), label=label)
    if not entries:
        raise OperationFailed(f"{label} has no files to package (in {source.parent})")
    entries.sort(key=lambda e: e.name)
    return entries


def _excluded(name: str, exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def _walk(
    root: Path,
    directory: Path,
    prefix: str,
    exclude: tuple[str, ...],
    entries: list[_Entry],
    *,
    ancestors: tuple[Path, ...],
    label: str,
) -> None:
    with os.scandir(directory) as listing:
        items = list(listing)
    for item in items:
        if _excluded(item.name, exclude):
            continue
        name = f"{prefix}{item.name}"
        path = Path(item.path)
        if item.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.exists():
                raise OperationFailed(f"{label}: symlink {name} points to nothing")
            if target != root and root not in target.parents:
                raise OperationFailed(
                    f"{label}: symlink {name} points outside the directory, to {target}"
                )
            if target.is_dir() and target in ancestors:
                raise OperationFailed(f"{label}: symlink {name} makes a loop, to {target}")
        if item.is_dir():  # follows a symlink checked above
            real = Path(os.path.realpath(path))
            _walk(root, path, f"{name}/", exclude, entries,
                  ancestors=(*ancestors, real), label=label)
        elif item.is_file():
            info = item.stat()  # of the target, for a symlink
            entries.append(
                _Entry(name, path, bool(info.st_mode & stat.S_IXUSR), info.st_size)
            )
        # Sockets, fifos and devices are not code: skipped.
