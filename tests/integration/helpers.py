"""What the integration tests share: counting the AWS calls a command makes; a new app
served by the local gateway."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sdeliver.aws import is_write


class CallLog:
    """Every AWS call the CLI makes, from SDELIVER_CALL_LOG (a botocore before-call hook)."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        monkeypatch.setenv("SDELIVER_CALL_LOG", str(path))

    def reset(self) -> None:
        self.path.write_text("")

    def calls(self) -> list[str]:
        return self.path.read_text().split("\n")[:-1] if self.path.exists() else []

    def writes(self) -> list[str]:
        return [c for c in self.calls() if is_write(c.split(" ", 1)[1])]


@contextmanager
def new_app(
    sdeliver: Callable[..., Any], tmp_path: Path, endpoint: str, prefix: str, extra_config: str
) -> Iterator[Path]:
    """`sdeliver new` in tmp_path/app, `extra_config` appended to its sdeliver.yaml, served by
    a local gateway over the moto server while the block runs."""
    from sdeliver.config import load_config
    from sdeliver.local.emulator import register_gateway, start_gateway

    directory = tmp_path / "app"
    created = sdeliver("new", f"{prefix}-{secrets.token_hex(3)}", "--dir", str(directory),
                       cwd=tmp_path)
    assert created.code == 0, created.output
    with (directory / "sdeliver.yaml").open("a") as config:
        config.write(extra_config)
    gateway = start_gateway(endpoint, lambda: load_config(directory / "sdeliver.yaml"))
    unregister = register_gateway(endpoint, gateway.url)
    try:
        yield directory
    finally:
        unregister()
        gateway.stop()
