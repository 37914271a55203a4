"""The service models of the oldest botocore that pyproject.toml allows, to check calls against.

A newer botocore accepts every parameter an older one does, not the reverse: a call that
works here can fail under the floor version (`Unknown parameter in input: "IfMatch"`).
The floor's wheel is downloaded once (`python -m tests.botocore_floor`, which `.ci/run`
does) into a cache directory and unpacked there; its models are read with the installed
botocore's loader, as JSON.

Run as a module it fetches the wheel and exits 0, or says why it could not and exits 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
CACHE = Path(os.environ.get("SDELIVER_TEST_CACHE", Path.home() / ".cache" / "sdeliver-tests"))


def floor_version() -> str:
    """The version in pyproject.toml's `botocore>=X` requirement."""
    found = re.search(r'"botocore>=([0-9.]+)', (ROOT / "pyproject.toml").read_text())
    assert found, "pyproject.toml must require botocore>=X (the floor the calls are checked at)"
    return found.group(1)


def fetch(version: str) -> Path:
    """The unpacked data directory of botocore `version`, downloading it when not cached.
    Raises RuntimeError saying why when it cannot be fetched."""
    target = CACHE / f"botocore-{version}"
    data = target / "botocore" / "data"
    if (target / ".complete").exists():
        return data
    target.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"botocore=={version}", "--no-deps",
             "--only-binary=:all:", "--quiet", "--dest", str(target)],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeError(f"pip download botocore=={version} failed: {err}") from None
    wheels = sorted(target.glob(f"botocore-{version}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download botocore=={version} failed: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(target, [n for n in wheel.namelist() if n.startswith("botocore/data/")])
    wheels[0].unlink()
    (target / ".complete").write_text(version + "\n")
    return data


@dataclass(frozen=True)
class FloorModels:
    """botocore's service models at one version, to check calls against."""

    data: Path
    version: str

    @cache  # noqa: B019 - a handful of services, one object per test session
    def service(self, name: str) -> Any:
        import botocore.loaders
        import botocore.model

        loader = botocore.loaders.Loader(
            extra_search_paths=[str(self.data)], include_default_search_paths=False
        )
        return botocore.model.ServiceModel(loader.load_service_model(name, "service-2"), name)

    def problems(self, service: str, operation: str, paths: list[str]) -> list[str]:
        """What in one call this botocore would refuse: an unknown service, operation or
        parameter path (as `sdeliver.aws.parameter_paths` writes them)."""
        where = f"{service}.{operation}"
        try:
            model = self.service(service)
        except Exception:
            return [f"{where}: no service {service!r} in botocore {self.version}"]
        if operation not in model.operation_names:
            return [f"{where}: no such operation in botocore {self.version}"]
        root = model.operation_model(operation).input_shape
        return [
            f"{where}: parameter {path} unknown to botocore {self.version}"
            for path in paths if not _resolves(root, path)
        ]


def _resolves(shape: Any, path: str) -> bool:
    for part in re.findall(r"[^.\[\]{}]+|\[\]|\{\}", path):
        if shape is None:
            return False
        if part == "[]":
            shape = shape.member if shape.type_name == "list" else None
        elif part == "{}":
            shape = shape.value if shape.type_name == "map" else None
        else:
            shape = shape.members.get(part) if shape.type_name == "structure" else None
    return shape is not None


def floor_models() -> FloorModels:
    version = floor_version()
    return FloorModels(fetch(version), version)


if __name__ == "__main__":
    try:
        print(f"botocore {floor_version()} models in {floor_models().data}")
    except RuntimeError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
