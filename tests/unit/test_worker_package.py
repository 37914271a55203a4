"""The worker's zip: sdeliver and everything it imports, for the function's platform.

Building needs PyPI once (pip, manylinux wheels only); the result is cached, so these tests
pay for it on a fresh machine only.
"""

from __future__ import annotations

import io
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sdeliver import worker_package
from sdeliver.package import Package

LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
LOCAL_ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine(), "x86_64")


@pytest.fixture(scope="session")
def lambda_package() -> Package:
    return worker_package.build()


@pytest.fixture(scope="session")
def local_package() -> Package:
    """Built for this interpreter, so a subprocess here can import it as Lambda would."""
    return worker_package.build(LOCAL_RUNTIME, LOCAL_ARCHITECTURE)


def names(package: Package) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(package.data)).namelist()


def test_the_handler_imports_from_the_zip_alone_in_a_fresh_interpreter(
    local_package: Package, tmp_path: Path
) -> None:
    # Lambda unzips the package into /var/task: compiled modules cannot load from a zip.
    task = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(local_package.data)).extractall(task)
    code = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p];"
        f"sys.path.insert(0, {str(task)!r});"
        "from sdeliver.actions.worker import handler;"
        "import pydantic_core, yaml, tenacity, boto3, awscrt, botocore.compat;"
        "assert pydantic_core.__file__.startswith(sys.path[0]), pydantic_core.__file__;"
        "assert boto3.__file__.startswith(sys.path[0]), boto3.__file__;"
        "assert awscrt.__file__.startswith(sys.path[0]), awscrt.__file__;"
        # What HTTPS hosting's release switch needs: botocore signs SigV4A with awscrt.
        "assert botocore.compat.HAS_CRT;"
        "print(sorted(m for m in ('typer', 'rich', 'click', 'moto') if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120, check=False)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"  # the worker never imports the CLI's libraries


def test_the_compiled_core_is_built_for_the_lambda_runtime(lambda_package: Package) -> None:
    cores = [n for n in names(lambda_package) if n.startswith("pydantic_core/_pydantic_core") and n.endswith(".so")]
    assert cores == ["pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so"]


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


def test_awscrt_is_built_for_the_lambda_platform_not_this_machine() -> None:
    # Its compiled core is one abi3 module per platform: e_machine 62 is x86-64, 183 AArch64.
    for architecture, machine in (("x86_64", 62), ("arm64", 183)):
        package = worker_package.build(worker_package.RUNTIME, architecture)
        archive = zipfile.ZipFile(io.BytesIO(package.data))
        [core] = [n for n in archive.namelist() if n.startswith("_awscrt") and n.endswith(".so")]
        assert _elf_machine(archive.read(core)) == machine, (architecture, core)


def test_the_package_holds_sdeliver_but_not_its_templates(lambda_package: Package) -> None:
    listed = names(lambda_package)
    assert "sdeliver/actions/worker.py" in listed
    assert "sdeliver/operations/pipeline.py" in listed
    assert not [n for n in listed if n.startswith("sdeliver/templates/")]
    assert not [n for n in listed if n.endswith(".pyc")]


def test_building_twice_gives_the_same_bytes(lambda_package: Package) -> None:
    assert worker_package.build().sha256_b64 == lambda_package.sha256_b64
