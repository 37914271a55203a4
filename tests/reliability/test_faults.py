"""Transient faults: the release workflow through a proxy that fails requests on purpose
ends in exactly the state it reaches without faults.

Workflow: init; deploy test (v1); promote test->prod; deploy test (v2); promote; rollback
prod. The proxy answers 500, 503 or throttling; "after" faults forward the request first,
so the call took effect and only its response is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import (
    WORKFLOW,
    Run,
    Tripwire,
    differences,
    fresh_account,
    ledger_entries,
    reference_snapshot,
    run_workflow,
    snapshot,
)
from tests.reliability.faultproxy import FaultProxy

pytestmark = pytest.mark.integration


def through_proxy(sdeliver: Run, app_dir: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> FaultProxy:
    with FaultProxy(endpoint, **options) as proxy:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", proxy.url)
        run_workflow(sdeliver, app_dir)
    return proxy


@pytest.fixture
def reference(sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: Tripwire) -> dict[str, Any]:
    return reference_snapshot(sdeliver, app_dir, endpoint)


def test_faults_before_the_request_reaches_aws_are_retried(sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    proxy = through_proxy(sdeliver, app_dir, endpoint, monkeypatch, rate=0.3, seed=11, after_share=0.0)
    assert len(proxy.injected) > 30
    assert differences(snapshot(endpoint), reference) == []




def test_thirty_percent_faults_half_after_forwarding_end_as_without(sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    proxy = through_proxy(sdeliver, app_dir, endpoint, monkeypatch, rate=0.3, seed=7)
    assert sum(f.when == "after" for f in proxy.injected) > 15
    assert differences(snapshot(endpoint), reference) == []


# Every mutating operation of the workflow (from its call log); each test loses the first
# response of every call of one of them.
WRITES = [
    "PutObject", "DeleteObject", "CreateBucket", "PutPublicAccessBlock", "PutBucketPolicy",
    "PutBucketTagging", "PutBucketWebsite", "PutBucketEncryption", "PutBucketVersioning",
    "CreateRole", "PutRolePolicy", "CreateFunction", "UpdateFunctionCode", "PublishVersion",
    "CreateAlias", "UpdateAlias", "AddPermission", "CreateRestApi", "PutRestApi", "TagResource",
    "CreateDeployment", "CreateStage", "UpdateStage", "ChangeResourceRecordSets",
]


KNOWN: dict[str, str] = {}
GROUPS = 4  # workflow runs that together lose a response of every operation in WRITES


def lost_responses_survived(operations: list[str], sdeliver, app_dir, endpoint, reference, monkeypatch) -> list[str]:
    """The operations (or groups of them) whose lost responses change the outcome: one run
    loses the first response of every call of all of `operations`; when that run fails,
    each half is run again on a fresh account, down to the operation to blame."""
    fresh_account(endpoint)
    problem = None
    try:
        proxy = through_proxy(sdeliver, app_dir, endpoint, monkeypatch, faults=dict.fromkeys(operations, "after"))
        missed = [op for op in operations if not any(f.operation == op for f in proxy.injected)]
        if missed:
            problem = f"never called: {missed}"
        else:
            found = differences(snapshot(endpoint), reference)
            problem = f"{found}" if found else None
    except AssertionError as err:  # a command of the workflow failed
        problem = str(err)[:500]
    if problem is None:
        return []
    if len(operations) == 1:
        return [f"{operations[0]}: {problem}"]
    half = len(operations) // 2
    blamed = (lost_responses_survived(operations[:half], sdeliver, app_dir, endpoint, reference, monkeypatch)
              + lost_responses_survived(operations[half:], sdeliver, app_dir, endpoint, reference, monkeypatch))
    return blamed or [f"{operations} together: {problem}"]


@pytest.mark.parametrize("group", range(GROUPS))
def test_lost_responses_are_survived(group, sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    operations = [op for i, op in enumerate(WRITES) if i % GROUPS == group and op not in KNOWN]
    assert operations
    assert lost_responses_survived(operations, sdeliver, app_dir, endpoint, reference, monkeypatch) == []


@pytest.mark.exhaustive
@pytest.mark.parametrize("operation", [
    pytest.param(op, marks=pytest.mark.xfail(strict=True, reason=KNOWN[op])) if op in KNOWN else op
    for op in WRITES
])
def test_a_lost_response_is_survived(operation, sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    proxy = through_proxy(sdeliver, app_dir, endpoint, monkeypatch, faults={operation: "after"})
    assert any(f.operation == operation for f in proxy.injected)
    assert differences(snapshot(endpoint), reference) == []


def test_a_lost_response_to_taking_the_lease_is_taken_as_ours(sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    through_proxy(sdeliver, app_dir, endpoint, monkeypatch, faults={"PutObject /locks/": "after"})
    assert differences(snapshot(endpoint), reference) == []


def test_a_lost_response_to_a_ledger_entry_does_not_write_it_twice(sdeliver, app_dir, endpoint, reference, monkeypatch) -> None:
    through_proxy(sdeliver, app_dir, endpoint, monkeypatch, faults={"PutObject /releases/": "after"})
    assert ledger_entries(endpoint) and differences(snapshot(endpoint), reference) == []


def test_retries_hidden_by_botocore_are_logged_with_verbose(sdeliver, app_dir, endpoint, hosted_zone, tripwire, monkeypatch) -> None:
    run_workflow(sdeliver, app_dir, WORKFLOW[:1])
    with FaultProxy(endpoint, faults={"UpdateAlias": "before"}) as proxy:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", proxy.url)
        result = sdeliver("-v", "deploy", "--env", "test", cwd=app_dir)
    assert result.code == 0, result.output
    assert "lambda.UpdateAlias: succeeded after 1 retries" in result.stderr
