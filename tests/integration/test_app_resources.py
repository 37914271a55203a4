"""App resources through the real CLI over HTTP: init makes the tables and the stages'
variables, check finds nothing to do, destroy keeps the tables unless --purge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import client

pytestmark = pytest.mark.integration

TABLES = """
tables:
  items:
    key: {name: id}
    ttl: expiresAt
"""


def test_init_check_and_destroy_with_a_table(sdeliver, project_dir: Path, endpoint: str, hosted_zone: str) -> None:  # type: ignore[no-untyped-def]
    config = project_dir / "sdeliver.yaml"
    config.write_text(config.read_text().split("\npipeline:")[0] + "\n" + TABLES)
    assert (result := sdeliver("init", "--yes", cwd=project_dir)).code == 0, result.output

    ddb = client(endpoint, "dynamodb")
    assert sorted(ddb.list_tables()["TableNames"]) == ["dromedary-prod-items", "dromedary-test-items"]
    apigw = client(endpoint, "apigateway")
    api_id = next(a["id"] for a in apigw.get_rest_apis()["items"] if a["name"] == "dromedary")
    assert apigw.get_stage(restApiId=api_id, stageName="prod")["variables"] == {
        "alias": "prod", "TABLE_ITEMS": "dromedary-prod-items"}
    assert (result := sdeliver("reconcile", "--check", cwd=project_dir)).code == 0, result.output

    assert (result := sdeliver("destroy", "--yes", cwd=project_dir)).code == 0, result.output
    assert sorted(ddb.list_tables()["TableNames"]) == ["dromedary-prod-items", "dromedary-test-items"]
    assert (result := sdeliver("destroy", "--yes", "--purge", cwd=project_dir)).code == 0, result.output
    assert ddb.list_tables()["TableNames"] == []
