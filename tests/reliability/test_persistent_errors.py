"""Persistent errors: exit 1 with one clear line naming the operation, the resource and
the fix; nothing in the ledger claims success for what failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import client
from tests.reliability.conftest import WORKFLOW, Run, ledger_entries, run_step, run_workflow
from tests.reliability.faultproxy import FaultProxy

pytestmark = pytest.mark.integration


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_access_denied_names_the_call_the_resource_and_the_fix(
    sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_workflow(sdeliver, app_dir, WORKFLOW[:1])
    with FaultProxy(endpoint, faults={"UpdateAlias": "denied"}) as proxy:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", proxy.url)
        result = run_step(sdeliver, app_dir, WORKFLOW[1])
    assert result.code == 1
    [line] = error_lines(result.output)
    assert "access denied" in line and "update_alias" in line and "alias test" in line
    assert "grant this permission" in result.output
    assert "Traceback" not in result.output
    assert [e["outcome"] for e in ledger_entries(endpoint)["test"]] == ["failed"]


def test_a_missing_hosted_zone_is_named_with_its_fix(sdeliver: Run, app_dir: Path, endpoint: str) -> None:
    result = sdeliver("init", "--yes", cwd=app_dir)
    assert result.code == 1, result.output
    [line] = error_lines(result.output)
    assert "example.com" in line
    assert "hosted zone" in result.output.lower()
    assert "Traceback" not in result.output


def test_a_deleted_function_is_named_with_its_fix(sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str) -> None:
    run_workflow(sdeliver, app_dir, WORKFLOW[:2])
    client(endpoint, "lambda").delete_function(FunctionName="dromedary-app")
    result = run_step(sdeliver, app_dir, WORKFLOW[3])
    assert result.code == 1, result.output
    [line] = error_lines(result.output)
    assert "dromedary-app" in line
    assert "sdeliver init" in result.output or "reconcile" in result.output
    assert [e["outcome"] for e in ledger_entries(endpoint)["test"]][1:] in ([], ["failed"])


def test_a_bucket_name_taken_by_another_account_is_named_with_its_fix(
    sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto lets any account use any bucket, so the proxy answers as AWS does for a bucket
    # another account owns: HeadBucket is 403.
    with FaultProxy(endpoint, faults={"HeadBucket /dromedary.example.com": "denied"}) as proxy:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", proxy.url)
        result = sdeliver("init", "--yes", cwd=app_dir)
    assert result.code == 1, result.output
    [line] = error_lines(result.output)
    assert "dromedary.example.com" in line and "another AWS account" in line
    assert "choose another name" in result.output
