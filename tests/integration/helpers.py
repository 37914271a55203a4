"""What the integration tests share: counting the AWS calls a command makes."""

from __future__ import annotations

from pathlib import Path

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
