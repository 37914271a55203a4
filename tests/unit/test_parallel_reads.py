"""Reads side by side (cli/parallel.py) in reconcile's plan and in status: the same plan as
when read one by one, the same first error, and the reads really overlap (in-process moto).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver import parallel
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import OperationFailed
from sdeliver.operations import reconcile, status
from sdeliver.project import Project
from sdeliver.resources import api, artifacts, dns, function, iam, site

from tests.conftest import provisioned

ENOUGH = 30  # seconds a barrier waits for the other reads before the test fails anyway


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws
    from sdeliver.local.quirks import _ignore_policy_conditions

    _ignore_policy_conditions()  # moto would apply aws:SecureTransport to its own plain HTTP
    with mock_aws(config={"iam": {"load_aws_managed_policies": False}}):
        yield


@pytest.fixture
def config_path(project_dir: Path, aws: None) -> Path:
    """The example app without its pipeline (which would build the worker's package)."""
    path = project_dir / "sdeliver.yaml"
    path.write_text(path.read_text().partition("pipeline:")[0])
    return path


def fresh(path: Path) -> Project:
    """A new Project (no facts learnt) over the same account."""
    config = load_config(path)
    return Project(config=config, aws=Aws(region=config.region))


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The plan's JSON read one by one, then side by side, each by a fresh Project."""
    monkeypatch.setattr(parallel, "THREADS", 1)
    one_by_one = reconcile.plan(fresh(path), prune=True).to_json()
    monkeypatch.setattr(parallel, "THREADS", 8)
    side_by_side = reconcile.plan(fresh(path), prune=True).to_json()
    return one_by_one, side_by_side


def test_an_empty_account_plans_the_same_either_way(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("route53", region_name="us-east-1").create_hosted_zone(
        Name="example.com", CallerReference="t")
    one_by_one, side_by_side = both_ways(config_path, monkeypatch)
    assert side_by_side == one_by_one
    assert {c["action"] for c in side_by_side["changes"]} == {"create"}


def test_a_converged_app_plans_the_same_either_way(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(config_path)
    one_by_one, side_by_side = both_ways(config_path, monkeypatch)
    assert side_by_side == one_by_one
    assert side_by_side["converged"]


def test_a_drifted_app_plans_the_same_either_way(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = provisioned(config_path)
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.delete_alias(FunctionName=project.function_name, Name="prod")
    lam.update_function_configuration(FunctionName=project.function_name, MemorySize=512)
    boto3.client("iam").put_role_policy(
        RoleName=project.execution_role, PolicyName="sdeliver-logs",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                       '"Action": "logs:*", "Resource": "*"}]}')
    boto3.client("s3").delete_bucket_website(Bucket=project.site_bucket("test"))
    boto3.client("s3").delete_bucket_tagging(Bucket=project.artifact_bucket)
    gateway = boto3.client("apigateway", region_name="us-east-1")
    api_id = api.find_api(project)["id"]  # type: ignore[index]
    gateway.delete_stage(restApiId=api_id, stageName="prod")
    one_by_one, side_by_side = both_ways(config_path, monkeypatch)
    assert side_by_side == one_by_one
    pending = {c["kind"] for c in side_by_side["changes"] if c["action"] != "none"}
    assert pending == {
        artifacts.KIND, iam.KIND, function.KIND, function.ALIAS_KIND, api.KIND_STAGE,
        api.KIND_PERMISSION, site.KIND,
    }


def test_the_first_kind_that_fails_fails_the_plan(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kinds planned side by side: the error is the one planning them in order would give."""

    def failing(message: str) -> Callable[[Project], Any]:
        def plan(_project: Project) -> Any:
            raise OperationFailed(message)

        return plan

    monkeypatch.setattr(dns, "plan", failing("dns"))  # wave 1, last in order
    monkeypatch.setattr(function, "plan", failing("function"))  # wave 2, before api
    monkeypatch.setattr(api, "plan", failing("api"))
    with pytest.raises(OperationFailed, match=r"^function$"):
        reconcile.plan(fresh(config_path))


def test_reconcile_reads_kinds_and_their_parts_side_by_side(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(config_path)
    # The kinds of the first group at once, and within kinds each environment's parts.
    barrier = threading.Barrier(4, timeout=ENOUGH)
    for module in (artifacts, iam, site, dns):
        original = module.plan

        def waiting(project: Project, original: Any = original) -> Any:
            barrier.wait()
            return original(project)

        monkeypatch.setattr(module, "plan", waiting)
    aliases = threading.Barrier(2, timeout=ENOUGH)
    original_alias = function.read_alias

    def alias(project: Project, env: str) -> Any:
        aliases.wait()
        return original_alias(project, env)

    monkeypatch.setattr(function, "read_alias", alias)
    stages = threading.Barrier(2, timeout=ENOUGH)
    original_stage = api.stage

    def stage(project: Project, api_id: str, env: str) -> Any:
        stages.wait()
        return original_stage(project, api_id, env)

    monkeypatch.setattr(api, "stage", stage)
    assert reconcile.plan(fresh(config_path)).converged


def test_status_reads_pointers_ledger_and_lease_side_by_side(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(config_path)
    barrier = threading.Barrier(2, timeout=ENOUGH)
    for name in ("read_live", "read_lock"):
        original = getattr(status, name)

        def waiting(*args: Any, original: Any = original) -> Any:
            barrier.wait()
            return original(*args)

        monkeypatch.setattr(status, name, waiting)
    found = status.environment_status(fresh(config_path), "test")
    assert found["version"] is not None
    assert found["locked_by"] is None


def test_status_one_by_one_is_the_same(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provisioned(config_path)
    monkeypatch.setattr(parallel, "THREADS", 1)
    one_by_one = status.status(fresh(config_path))
    monkeypatch.setattr(parallel, "THREADS", 8)
    assert status.status(fresh(config_path)) == one_by_one


def test_together_keeps_order_and_raises_the_first_error_in_order() -> None:
    gate = threading.Barrier(3, timeout=ENOUGH)

    def value(n: int) -> Callable[[], int]:
        def call() -> int:
            gate.wait()
            return n

        return call

    assert parallel.together(value(1), value(2), value(3)) == [1, 2, 3]

    def fails(message: str) -> Callable[[], int]:
        def call() -> int:
            raise OperationFailed(message)

        return call

    with pytest.raises(OperationFailed, match=r"^first$"):
        parallel.together(lambda: 0, fails("first"), fails("second"))
    assert parallel.each(lambda n: n * 2, [3, 1, 2]) == [6, 2, 4]
