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


def website_hosting(config: Path) -> None:
    """A `sdeliver new` config as it was before HTTPS hosting became the default: no
    `site.hosting` key (s3-website), no domains, no dns zone."""
    kept, skipping, previous = [], False, ""
    for line in config.read_text(encoding="utf-8").splitlines(keepends=True):
        stripped, before, previous = line.strip(), previous, line.strip()
        if line.startswith("dns:"):
            skipping = True  # the block, up to the next top-level key
            continue
        if skipping and (line.startswith(" ") or not stripped):
            continue
        skipping = False
        if stripped.startswith(("hosting:", "domain:")) or (
            stripped.startswith("#") and before.startswith("hosting:")  # its comment's 2nd line
        ):
            continue
        kept.append(line)
    config.write_text("".join(kept), encoding="utf-8")


@contextmanager
def new_app(
    sdeliver: Callable[..., Any], tmp_path: Path, endpoint: str, prefix: str, extra_config: str,
    *, hosting: str = "s3-website",
) -> Iterator[Path]:
    """`sdeliver new` in tmp_path/app, `extra_config` appended to its sdeliver.yaml, served by
    a local gateway over the moto server while the block runs. hosting s3-website (what the
    tests using this are about: two origins, and the pipeline): the scaffold without its
    HTTPS hosting, domains and zone."""
    from sdeliver.config import load_config
    from sdeliver.endpoints import register_gateway
    from sdeliver.local.emulator import start_gateway

    directory = tmp_path / "app"
    created = sdeliver("new", f"{prefix}-{secrets.token_hex(3)}", "--dir", str(directory),
                       cwd=tmp_path)
    assert created.code == 0, created.output
    if hosting == "s3-website":
        website_hosting(directory / "sdeliver.yaml")
    with (directory / "sdeliver.yaml").open("a") as config:
        config.write(extra_config)
    gateway = start_gateway(endpoint, lambda: load_config(directory / "sdeliver.yaml"))
    unregister = register_gateway(endpoint, gateway.url)
    try:
        yield directory
    finally:
        unregister()
        gateway.stop()
