"""What a release command did, for people (a line) and for scripts (--json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..ledger import E2e, Entry

Command = Literal["deploy", "promote", "rollback", "canary"]
Result = Literal["succeeded", "failed", "rolled-back", "unchanged"]


@dataclass(kw_only=True)
class ReleaseResult:
    env: str
    action: Command
    outcome: Result
    release: str
    version: str | None  # the Lambda version (JSON: "version" and "lambda_version")
    deployment_id: str | None = None
    e2e: E2e = "skipped"
    seq: int | None = None
    site: dict[str, int] | None = None
    message: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in {"succeeded", "unchanged"} and self.e2e != "failed"

    def to_json(self) -> dict[str, Any]:
        # "version" stays for scripts that read it; "lambda_version" says which version.
        return {**asdict(self), "lambda_version": self.version}

    def summary(self) -> str:
        where = f"{self.env}: release {self.release}, Lambda version {self.version}"
        if self.outcome == "unchanged":
            return f"{self.action} {where}: already deployed, nothing changed"
        seq = f" (ledger #{self.seq})" if self.seq is not None else ""
        text = f"{self.action} {where}: {self.outcome}, e2e {self.e2e}{seq}"
        return text + (f": {self.message}" if self.message else "")


def unchanged_result(env: str, action: Command, release: str, current: Entry) -> ReleaseResult:
    """The answer of a command that found `env` already where it goes (ledger entry
    `current`): nothing changed, nothing recorded."""
    return ReleaseResult(
        env=env, action=action, outcome="unchanged", release=release,
        version=current.lambda_version, deployment_id=current.api_deployment_id,
        e2e=current.e2e, seq=current.seq,
    )
