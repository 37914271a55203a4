"""The pipeline worker's package: sdeliver's own code and what it imports, built for Lambda.

The Lambda Python runtime has none of sdeliver's dependencies we can rely on: pydantic (and
its compiled core, which must match the function's architecture and Python), tenacity and
PyYAML are missing, and the runtime's boto3 may predate S3 conditional writes, which the
ledger and the lock depend on. So they are all installed with pip for the Lambda platform
(manylinux wheels only, never compiled here) into a cache directory, once per set of
pinned versions, and zipped with sdeliver's package reproducibly (`package.archive_file`).

The worker never imports typer or rich (the CLI's), so they are left out. It does take
awscrt (compiled, so the Lambda platform's wheel): botocore signs the CloudFront
KeyValueStore API, which switches a CloudFront-hosted site's release, only with it, and
with it installed botocore signs every call through it, as the CLI does.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .errors import OperationFailed
from .package import DEFAULT_EXCLUDE, Package, archive_file, collect

RUNTIME = "python3.12"
HANDLER = "sdeliver.actions.worker.handler"
# What the worker imports beyond the standard library, pinned to what this sdeliver runs
# with, so the worker behaves as the CLI that was tested.
DISTRIBUTIONS = (
    "pydantic", "pydantic-core", "tenacity", "PyYAML", "boto3", "botocore", "awscrt",
)
PLATFORMS = {
    # Lambda's Amazon Linux 2023 runtimes have glibc 2.34: manylinux 2014 and 2_28 wheels run.
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
# Not needed at run time: the CLI's templates, pip's console scripts, byte code.
SDELIVER_EXCLUDE = (*DEFAULT_EXCLUDE, "templates")
DEPENDENCY_EXCLUDE = (*DEFAULT_EXCLUDE, "bin")


def cache_dir() -> Path:
    configured = os.environ.get("SDELIVER_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdeliver"


def requirements() -> list[str]:
    pins = []
    for name in DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def dependencies(python: str, architecture: str) -> Path:
    """The installed dependencies for that Python and architecture (built once, cached)."""
    reqs = requirements()
    target = cache_dir() / f"worker-deps-{_key(reqs, python, architecture)}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
    platforms = [arg for p in PLATFORMS[architecture] for arg in ("--platform", p)]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", python, *platforms, "--target", str(staging), *reqs,
    ]
    found = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if found.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (found.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise OperationFailed(
            f"cannot build the pipeline worker's dependencies for Python {python} "
            f"({architecture}): {last}",
            hint="pip needs PyPI (or PIP_INDEX_URL) once; the result is cached in "
            f"{cache_dir()}",
        )
    try:
        staging.rename(target)
    except OSError:  # another build finished first: use it
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sdeliver_root() -> Path:
    return Path(__file__).resolve().parent


def build(runtime: str = RUNTIME, architecture: str = "x86_64") -> Package:
    """The worker's zip: dependencies at the root, sdeliver as the `sdeliver` package.

    Cached by the digest of every input, so a reconcile only pays for it once per change.
    """
    deps = dependencies(python_version(runtime), architecture)
    own = [
        dataclasses.replace(entry, name=f"sdeliver/{entry.name}")
        for entry in collect(sdeliver_root(), exclude=SDELIVER_EXCLUDE, key="sdeliver")
    ]
    digest = hashlib.sha256()
    for entry in own:
        digest.update(entry.name.encode() + b"\0" + entry.path.read_bytes() + b"\0")
    cached = cache_dir() / f"worker-{deps.name}-{digest.hexdigest()[:16]}.zip"
    if cached.is_file():
        data = cached.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _package(data, len(archive.namelist()))
    entries = collect(deps, exclude=DEPENDENCY_EXCLUDE, key="worker dependencies") + own
    entries.sort(key=lambda e: e.name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            archive_file(archive, entry)
    data = buffer.getvalue()
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(cached)
    return _package(data, len(entries))


def _package(data: bytes, files: int) -> Package:
    raw = hashlib.sha256(data)
    return Package(data, base64.b64encode(raw.digest()).decode("ascii"), raw.hexdigest(), files)
