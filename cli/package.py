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
import json
import os
import stat
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, OperationFailed

# .sdeliver holds the build cache, which must never package itself (function.source: ".").
DEFAULT_EXCLUDE: tuple[str, ...] = ("__pycache__", "*.pyc", ".git", ".DS_Store", ".sdeliver")

# 1980-01-01 00:00:00 is the earliest time a zip entry can carry.
EPOCH = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
CHUNK = 1024 * 1024
# Lambda's quota for a function's code and layers, unzipped (Lambda quotas: 262,144,000 bytes).
UNZIPPED_LIMIT = 250 * 1024 * 1024


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
    # What the build cache compares (mtime_ns, ctime_ns, inode, mode): any write changes ctime.
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)


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
    cache: Path | None = None,
) -> Package:
    """Zip every file under `source` reproducibly; `key` names the setting in error messages.

    With `cache` (a directory), the zip of the same files (by path, size, times, inode and
    mode) is reused from there instead of being built again: the same bytes either way.
    """
    entries = collect(source, exclude=tuple(exclude), key=key)
    if cache is None:
        return _zip(entries)
    return _cached(cache, key, entries)


def _zip(entries: list[_Entry], digests: dict[str, str] | None = None) -> Package:
    """The zip of `entries`; with `digests`, the SHA-256 of every entry's bytes as zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            copied = archive_file(archive, entry)
            if digests is not None:
                digests[entry.name] = copied
    data = buffer.getvalue()
    digest = hashlib.sha256(data)
    return Package(
        data=data,
        sha256_b64=base64.b64encode(digest.digest()).decode("ascii"),
        sha256_hex=digest.hexdigest(),
        files=len(entries),
    )


def archive_file(archive: zipfile.ZipFile, entry: _Entry) -> str:
    """Add the file as `entry` says; the hex SHA-256 of the bytes it copied, read once."""
    info = zipfile.ZipInfo(entry.name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    # The private name is the only way to set a level per entry before Python 3.13.
    setattr(info, "_compresslevel", COMPRESS_LEVEL)  # noqa: B010
    info.create_system = 3  # unix, so the permission bits below mean the same everywhere
    mode = 0o755 if entry.executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.file_size = entry.size  # decides zip64 up front; no extra fields below 2 GiB
    digest = hashlib.sha256()
    with entry.path.open("rb") as src, archive.open(info, "w") as dst:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def collect(source: Path, *, exclude: tuple[str, ...], key: str) -> list[_Entry]:
    """Every file to package, sorted by its path in the zip."""
    label = f"{key} {source.name}/"
    # A setting that names no directory is the configuration's fault (exit 2), not a failure.
    if not source.exists():
        raise ConfigError(f"{label} does not exist in {source.parent}")
    if not source.is_dir():
        raise ConfigError(f"{label} is not a directory (in {source.parent})")
    root = source.resolve()
    entries: list[_Entry] = []
    _walk(root, root, "", exclude, entries, ancestors=(root,), label=label)
    if not entries:
        raise OperationFailed(f"{label} has no files to package (in {source.parent})")
    entries.sort(key=lambda e: e.name)
    unzipped = sum(e.size for e in entries)
    if unzipped > UNZIPPED_LIMIT:
        raise OperationFailed(
            f"{label} holds {unzipped / 1e6:.0f} MB of files; Lambda runs at most "
            f"{UNZIPPED_LIMIT / 1e6:.0f} MB unzipped (250 MiB)",
            hint="leave tests, caches and build tools out of the function's source",
        )
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
            stamp = (info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_mode)
            entries.append(
                _Entry(name, path, bool(info.st_mode & stat.S_IXUSR), info.st_size, stamp)
            )
        # Sockets, fifos and devices are not code: skipped.


# -- the build cache --------------------------------------------------------------------
#
# `.sdeliver/cache/<key>.zip` and `<key>.json` (the manifest of the files it was built from
# and the zip's SHA-256). Reusing the zip is safe only if it is what a fresh build would
# give: the manifest also holds what else decides the bytes (format, compression level,
# zlib's version), and the zip's SHA-256 is checked when it is read back. Files written
# within RACY_NS of the build may change again without their times moving (coarse clocks),
# so the SHA-256 of their contents as zipped is kept too and checked, as git does for its
# index.

CACHE_FORMAT = 1
RACY_NS = 2_000_000_000


def _manifest(entries: list[_Entry]) -> dict[str, object]:
    return {
        "format": CACHE_FORMAT,
        "level": COMPRESS_LEVEL,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "files": [[e.name, e.size, *e.stamp] for e in entries],
    }


def _file_sha256(path: Path) -> str:
    return sha256_file_digest(path)[0]


def _cached(cache: Path, key: str, entries: list[_Entry]) -> Package:
    zip_path, meta_path = cache / f"{key}.zip", cache / f"{key}.json"
    manifest = _manifest(entries)
    found = _read_cached(zip_path, meta_path, manifest, entries)
    if found is not None:
        return found
    started = time.time_ns()
    # The digests of the very bytes zipped: a second read could see an edit made since, its
    # times unmoved, and pair the new contents' digest with a zip of the old ones.
    digests: dict[str, str] = {}
    package = _zip(entries, digests)
    racy = {
        e.name: digests[e.name]
        for e in entries
        if max(e.stamp[0], e.stamp[1]) >= started - RACY_NS
    }
    try:
        cache.mkdir(parents=True, exist_ok=True)
        ignore = cache.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# sdeliver's build cache: safe to delete\n*\n")
        meta = {**manifest, "sha256": package.sha256_hex, "racy": racy}
        # The zip first, the manifest last, each replaced whole: a reader never pairs a
        # manifest with another build's zip without the SHA-256 check catching it.
        for path, data in ((zip_path, package.data), (meta_path, json.dumps(meta).encode())):
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(path)
    except OSError:
        pass  # a read-only checkout: no cache, the build is the same
    return package


def _read_cached(
    zip_path: Path, meta_path: Path, manifest: dict[str, object], entries: list[_Entry]
) -> Package | None:
    try:
        meta = json.loads(meta_path.read_bytes())
        if {k: meta.get(k) for k in manifest} != manifest:
            return None
        paths = {e.name: e.path for e in entries}
        racy = dict(meta.get("racy") or {})
        if any(_file_sha256(paths[name]) != digest for name, digest in racy.items()):
            return None
        data = zip_path.read_bytes()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    digest = hashlib.sha256(data)
    if digest.hexdigest() != meta.get("sha256"):
        return None
    return Package(
        data=data,
        sha256_b64=base64.b64encode(digest.digest()).decode("ascii"),
        sha256_hex=digest.hexdigest(),
        files=len(entries),
    )
