"""The Lambda handler CodePipeline's actions invoke: one job, one action, one result.

For each job: read it, download its input artifact with the job's artifact credentials,
extract it safely, run the action (the same operation the CLI's `pipeline run` runs), upload
the output artifact with the same credentials, and report the result. An action that cannot
finish now (the environment's lease is held, the function is still updating) returns a
continuation token counting attempts; at the job's maxAttempts it fails instead, so a job
can never be re-invoked forever. A failure is always a message a person can act on.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..errors import EnvironmentLocked, OperationFailed, SdeliverError
from ..operations.pipeline import FunctionBusy, project_at
from ..operations.pipeline_actions import run_action
from . import artifacts
from .job import Credentials, Job, NotYet, continuation_token, job_id, parse_job

MAX_MESSAGE = 5000  # what PutJobFailureResult accepts
MAX_SUMMARY = 2048
ArtifactAwsFactory = Callable[[Credentials], Aws]


class LogProgress:
    """Progress as Lambda log lines (CloudWatch), keeping the last ones for a failure."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _log(self, line: str) -> None:
        print(line, flush=True)
        self.lines = [*self.lines[-19:], line]

    def step(self, message: str) -> None:
        self._log(f"› {message}")

    def detail(self, message: str) -> None:
        self._log(f"  {message}")

    def warn(self, message: str) -> None:
        self._log(f"warning: {message}")

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        self._log(f"  {message}")
        yield

    def output(self, line: str) -> None:
        self._log(line)


def own_aws() -> Aws:
    """The worker's own role, in the region it runs in (or the emulator it was made for)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return Aws(region=region, endpoint_url=os.environ.get("SDELIVER_ENDPOINT_URL") or None)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    aws = own_aws()
    return handle(
        event,
        aws=aws,
        artifact_aws=lambda creds: artifacts.artifact_aws(
            creds, region=aws.region, endpoint_url=aws.endpoint_url
        ),
    )


def handle(
    event: dict[str, Any],
    *,
    aws: Aws,
    artifact_aws: ArtifactAwsFactory,
    progress: LogProgress | None = None,
) -> dict[str, Any]:
    """Run one job and report it; returns what was reported (for the log and for tests)."""
    progress = progress or LogProgress()
    try:
        job = parse_job(event)
    except OperationFailed as err:
        found = job_id(event)
        if found is None:
            raise  # not a job at all: nothing to report it to
        return _fail(aws, found, str(err))
    try:
        params = job.parameters()
    except SdeliverError as err:
        return _fail(aws, job.id, str(err))
    progress.step(f"job {job.id}: {job.user_parameters} (attempt {job.attempt})")
    try:
        try:
            summary = _run(job, params.action, params.env, aws, artifact_aws, progress)
        except (EnvironmentLocked, FunctionBusy) as err:
            raise NotYet(err.message) from None
    except NotYet as wait:
        if job.attempt >= params.max_attempts:
            return _fail(
                aws, job.id,
                f"gave up after {job.attempt} attempts (maxAttempts={params.max_attempts}): "
                f"{wait.reason}",
            )
        token = continuation_token(job.attempt + 1, wait.state)
        progress.step(f"not finished ({wait.reason}): continuing as attempt {job.attempt + 1}")
        return _succeed(aws, job.id, f"waiting: {wait.reason}", token)
    except SdeliverError as err:
        return _fail(aws, job.id, str(err))
    except Exception as err:  # never leave a job without a result: it would hang for hours
        traceback.print_exc()
        return _fail(aws, job.id, f"internal error in the sdeliver worker: "
                     f"{type(err).__name__}: {err}")
    return _succeed(aws, job.id, summary)


def _run(
    job: Job,
    action: str,
    env: str | None,
    aws: Aws,
    artifact_aws: ArtifactAwsFactory,
    progress: LogProgress,
) -> str:
    if not job.inputs:
        raise OperationFailed(f"action {action} needs an input artifact; the job has none")
    if job.credentials is None:
        raise OperationFailed("the job carries no artifact credentials")
    store = artifact_aws(job.credentials)
    with tempfile.TemporaryDirectory(prefix="sdeliver-job-") as tmp:
        tree = artifacts.download(store, job.inputs[0], Path(tmp) / "input")
        project = project_at(tree, aws, progress)
        result = run_action(project, action, env, revision=job.revision, wait=False)
        if not result.ok:
            raise OperationFailed(result.summary)
        for output in job.outputs:
            artifacts.upload(store, output, tree, kms_key=job.encryption_key)
    return result.summary


def _succeed(aws: Aws, job: str, summary: str, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"jobId": job, "executionDetails": {"summary": summary[:MAX_SUMMARY]}}
    if token is not None:
        params["continuationToken"] = token
    aws.call("codepipeline", "put_job_success_result", resource=f"job {job}", **params)
    return {"job": job, "result": "continue" if token else "success", "summary": summary,
            **({"continuationToken": token} if token else {})}


def _fail(aws: Aws, job: str, message: str) -> dict[str, Any]:
    message = message.strip() or "the action failed without a message (see the worker's log)"
    aws.call(
        "codepipeline", "put_job_failure_result", resource=f"job {job}", jobId=job,
        failureDetails={"type": "JobFailed", "message": message[:MAX_MESSAGE]},
    )
    return {"job": job, "result": "failure", "message": message}
