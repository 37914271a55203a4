"""A CodePipeline job as the worker sees it: what to do, where its artifacts are, and how
many times it has been invoked for the same job (the continuation token)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..errors import OperationFailed
from ..pipeline_spec import ACTIONS, BY_ACTION


class NotYet(Exception):
    """The step cannot finish in this invocation: CodePipeline should invoke it again."""

    def __init__(self, reason: str, state: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state or {}


@dataclass(frozen=True)
class Artifact:
    name: str
    bucket: str
    key: str
    revision: str | None = None


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never in a log line
        return f"Credentials({self.access_key_id[:4]}…)"


@dataclass(frozen=True)
class Parameters:
    action: str
    env: str | None
    max_attempts: int


@dataclass(frozen=True)
class Job:
    id: str
    user_parameters: str
    inputs: list[Artifact]
    outputs: list[Artifact]
    credentials: Credentials | None
    continuation: dict[str, Any] = field(default_factory=dict)
    encryption_key: str | None = None  # the KMS key output artifacts are written with

    @property
    def attempt(self) -> int:
        """1 on the first invocation; the token carries the count from there on."""
        return int(self.continuation.get("attempt", 1))

    def parameters(self) -> Parameters:
        return parse_parameters(self.user_parameters)

    @property
    def revision(self) -> str | None:
        return next((a.revision for a in self.inputs if a.revision), None)


def _artifacts(items: list[dict[str, Any]] | None) -> list[Artifact]:
    found = []
    for item in items or []:
        location = (item.get("location") or {}).get("s3Location") or {}
        found.append(
            Artifact(
                name=str(item.get("name", "")),
                bucket=str(location.get("bucketName", "")),
                key=str(location.get("objectKey", "")),
                revision=item.get("revision"),
            )
        )
    return found


def job_id(event: Any) -> str | None:
    """The job's id even from an event too broken to parse (to report the failure)."""
    try:
        return str(event["CodePipeline.job"]["id"])
    except (KeyError, TypeError):
        return None


def parse_job(event: Any) -> Job:
    try:
        job = event["CodePipeline.job"]
        data = job.get("data") or {}
        configuration = (data.get("actionConfiguration") or {}).get("configuration") or {}
        creds = data.get("artifactCredentials")
        token = data.get("continuationToken")
        return Job(
            id=str(job["id"]),
            user_parameters=str(configuration.get("UserParameters") or ""),
            inputs=_artifacts(data.get("inputArtifacts")),
            outputs=_artifacts(data.get("outputArtifacts")),
            credentials=Credentials(
                creds["accessKeyId"], creds["secretAccessKey"], creds.get("sessionToken")
            )
            if creds
            else None,
            continuation=parse_token(token) if token else {},
            encryption_key=(data.get("encryptionKey") or {}).get("id"),
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise OperationFailed(f"not a CodePipeline job event (missing {err})") from None


def parse_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(token)
        attempt = int(state["attempt"])
    except (ValueError, TypeError, KeyError):
        raise OperationFailed(
            f"the continuation token is not sdeliver's: {token[:100]!r}"
        ) from None
    if attempt < 1:
        raise OperationFailed(f"the continuation token counts {attempt} attempts")
    return dict(state)


def continuation_token(attempt: int, state: dict[str, Any]) -> str:
    return json.dumps({**state, "attempt": attempt}, sort_keys=True)


def parse_parameters(text: str) -> Parameters:
    """`action=deploy-app&env=test&maxAttempts=10` (the action's UserParameters)."""
    try:
        pairs = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise OperationFailed(f"UserParameters {text!r} is not a query string") from None
    values = {k: v[-1] for k, v in pairs.items()}
    action = values.get("action", "")
    if action not in ACTIONS:
        raise OperationFailed(
            f"UserParameters {text!r}: action must be one of {', '.join(ACTIONS)}"
        )
    env = values.get("env") or None
    if BY_ACTION[action].needs_env and env is None:
        raise OperationFailed(f"UserParameters {text!r}: action {action} needs env=")
    raw = values.get("maxAttempts", str(BY_ACTION[action].max_attempts))
    if not raw.isdigit() or int(raw) < 1:
        raise OperationFailed(f"UserParameters {text!r}: maxAttempts must be a whole number ≥ 1")
    return Parameters(action, env, int(raw))
