"""What a first run on a real AWS account needs beyond what moto checks.

moto accepts parameters an older botocore would refuse, and it enforces no IAM. So the
release workflow runs once against the moto server with every call recorded (service,
operation, parameter paths: SDELIVER_CALL_PARAMS_LOG), and the record is checked against
the service models of the oldest botocore pyproject.toml allows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.botocore_floor import floor_models
from tests.reliability.conftest import WORKFLOW, run_workflow

pytestmark = pytest.mark.integration

# The workflow of tests/reliability (init, deploys, promotions, a rollback), then what an
# operator does besides: a canary promotion, status, history, reconcile, destroy.
STEPS: list[tuple[str, tuple[str, ...], str | None]] = [
    *WORKFLOW,
    ("deploy", ("deploy", "--env", "test"), "v3"),
    ("promote", ("promote", "--from", "test", "--to", "prod", "--canary", "50", "--steps", "2",
                 "--interval", "0"), None),
    ("status", ("status",), None),
    ("history", ("history", "--env", "prod"), None),
    ("reconcile", ("reconcile", "--check"), None),
    ("reconcile", ("reconcile", "--yes"), None),
    ("destroy", ("destroy", "--purge", "--yes"), None),
]

_RECORDED: list[dict[str, Any]] = []


def recorded_calls(
    sdeliver: Any, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """Every call of STEPS, as {service, operation, params} (run once per session)."""
    if not _RECORDED:
        config = project_dir / "sdeliver.yaml"
        kept = [line for line in config.read_text().splitlines()
                if not line.lstrip().startswith(("e2e:", "- python -m pip", "build:", "commands:"))]
        config.write_text("\n".join(kept) + "\n")
        log = tmp_path / "params.log"
        monkeypatch.setenv("SDELIVER_CALL_PARAMS_LOG", str(log))
        run_workflow(sdeliver, project_dir, STEPS)
        _RECORDED.extend(json.loads(line) for line in log.read_text().splitlines())
    return _RECORDED


@pytest.fixture
def calls(sdeliver, project_dir: Path, endpoint: str, hosted_zone: str, tmp_path: Path,  # type: ignore[no-untyped-def]
          monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    return recorded_calls(sdeliver, project_dir, tmp_path, monkeypatch)


def test_every_call_the_workflow_makes_is_known_to_the_floor_botocore(calls: list[dict[str, Any]]) -> None:
    try:
        models = floor_models()
    except RuntimeError as err:
        pytest.skip(f"the floor botocore's models cannot be fetched: {err}")
    distinct = {(c["service"], c["operation"], tuple(c["params"])) for c in calls}
    problems = sorted({p for service, operation, params in distinct
                       for p in models.problems(service, operation, list(params))})
    assert problems == []
    # The record covers what the floor exists for: conditional writes, the pipeline's mode.
    seen = {f"{c['service']}.{c['operation']}.{p}" for c in calls for p in c["params"]}
    # (PutObject.IfMatch renews a lease: only a command that outlasts the heartbeat sends it.)
    assert {"s3.PutObject.IfNoneMatch", "s3.DeleteObject.IfMatch",
            "codepipeline.CreatePipeline.pipeline.executionMode"} <= seen


def test_a_parameter_newer_than_the_floor_is_caught() -> None:
    try:
        models = floor_models()
    except RuntimeError as err:
        pytest.skip(f"the floor botocore's models cannot be fetched: {err}")
    assert models.problems("s3", "PutObject", ["Bucket", "IfMatch", "NoSuchParam"]) == [
        f"s3.PutObject: parameter NoSuchParam unknown to botocore {models.version}"]
    assert models.problems("codepipeline", "CreatePipeline", ["pipeline.executionMode"]) == []
    assert models.problems("lambda", "NoSuchOperation", []) != []


# Where the IAM action is not `service:Operation` (the Service Authorization Reference).
IAM_ACTIONS = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}


def iam_action(service: str, operation: str) -> str:
    """The IAM action one call needs; API Gateway's are its HTTP methods."""
    if service == "apigateway":
        import botocore.session

        model = botocore.session.get_session().get_service_model("apigateway")
        return f"apigateway:{model.operation_model(operation).http['method']}"
    return IAM_ACTIONS.get((service, operation), f"{service}:{operation}")


def test_the_printed_iam_policy_allows_every_call_of_the_workflow_and_no_star_action(
    calls: list[dict[str, Any]], sdeliver, project_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    printed = sdeliver("iam-policy", "--json", cwd=project_dir)
    assert printed.code == 0, printed.output
    statements = json.loads(printed.stdout)["Statement"]
    allowed = {a.lower() for s in statements for a in s["Action"]}
    needed = {(c["service"], c["operation"]) for c in calls} - NEEDS_NO_PERMISSION
    assert sorted(f"{s}.{o} needs {iam_action(s, o)}" for s, o in needed
                  if iam_action(s, o).lower() not in allowed) == []
    assert [a for s in statements for a in s["Action"] if "*" in a] == []
    assert all(s["Effect"] == "Allow" and s["Resource"] for s in statements)


def test_the_iam_policy_scopes_resources_to_the_apps_names(sdeliver, project_dir: Path, endpoint: str, hosted_zone: str) -> None:  # type: ignore[no-untyped-def]
    printed = sdeliver("iam-policy", "--json", cwd=project_dir)
    assert printed.code == 0, printed.output
    by_sid = {s["Sid"]: s for s in json.loads(printed.stdout)["Statement"]}
    assert by_sid["Functions"]["Resource"] == [
        "arn:aws:lambda:us-east-1:123456789012:function:dromedary-app",
        "arn:aws:lambda:us-east-1:123456789012:function:dromedary-app:*",
        "arn:aws:lambda:us-east-1:123456789012:function:dromedary-pipeline-worker",
        "arn:aws:lambda:us-east-1:123456789012:function:dromedary-pipeline-worker:*"]
    assert all(r.startswith("arn:aws:iam::123456789012:role/sdeliver/")
               for r in by_sid["Roles"]["Resource"])
    assert by_sid["Buckets"]["Resource"] == [
        "arn:aws:s3:::dromedary-artifacts-123456789012",
        "arn:aws:s3:::test.dromedary.example.com", "arn:aws:s3:::dromedary.example.com"]
    assert by_sid["DomainRecords"]["Resource"] == [f"arn:aws:route53:::hostedzone/{hosted_zone.rsplit('/', 1)[-1]}"]
    assert by_sid["Pipeline"]["Resource"] == ["arn:aws:codepipeline:us-east-1:123456789012:dromedary-delivery"]
    # Resources AWS cannot scope are named in the Sid.
    assert [s["Sid"] for s in by_sid.values() if "*" in s["Resource"]] == [
        "AccountWideListBucketsAndBlockPublicAccess", "FindHostedZone"]


def test_the_readmes_iam_policy_line_runs_as_written(project_dir: Path, endpoint: str) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.test_local import readme_block

    [line] = readme_block("## Using it on AWS")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", f"set -e\n{line}"], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    policy = json.loads((project_dir / "sdeliver-policy.json").read_text())
    assert policy["Version"] == "2012-10-17" and policy["Statement"]
