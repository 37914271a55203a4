"""Security: least privilege in every policy sdeliver writes, locked-down buckets, secrets
that never leave the function's configuration, archives that stay inside their target.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tomllib

from tests.conftest import client
from tests.reliability.conftest import APP, ARTIFACTS, SITES, WORKFLOW, Run

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-Xq9-never-print-me"


@pytest.fixture
def initialised(sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str) -> Path:
    assert sdeliver("init", "--yes", cwd=app_dir).code == 0
    return app_dir


def statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(document)
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


DECLARED = {
    "arn:aws:codestar-connections:us-east-1:123456789012:connection/8a1c7e2e-0c8b-4d8e-9a52-1f0c2f3e4d5a",
}
# Actions IAM has no resource type for: "*" is the only resource it accepts.
NO_RESOURCE_TYPE = {"codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"}


def test_every_iam_policy_names_its_actions_and_the_apps_own_resources(initialised: Path, endpoint: str) -> None:
    iam = client(endpoint, "iam")
    roles = iam.list_roles(PathPrefix="/sdeliver/")["Roles"]
    assert roles, "init creates the function's role under /sdeliver/"
    checked = 0
    for role in roles:
        trust = statements(role["AssumeRolePolicyDocument"])
        assert all(s["Principal"] != "*" and s["Action"] == "sts:AssumeRole" for s in trust)
        assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            for statement in statements(document):
                assert statement["Effect"] == "Allow"
                for action in as_list(statement["Action"]):
                    assert action != "*" and not action.endswith(":*"), (name, action)
                for resource in as_list(statement["Resource"]):
                    if resource == "*":
                        assert set(as_list(statement["Action"])) <= NO_RESOURCE_TYPE, (name, statement)
                    elif resource.startswith("arn:aws:apigateway:"):
                        assert resource.split("::", 1)[1].startswith(("/restapis", "/tags/")), resource
                    else:  # the app's own resources, or the connection sdeliver.yaml names
                        assert APP in resource or resource in DECLARED, (name, resource)
                checked += 1
    assert checked > 0


def test_the_artifact_bucket_is_private_encrypted_versioned_and_tls_only(initialised: Path, endpoint: str) -> None:
    s3 = client(endpoint, "s3")
    block = s3.get_public_access_block(Bucket=ARTIFACTS)["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
    rules = s3.get_bucket_encryption(Bucket=ARTIFACTS)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert s3.get_bucket_versioning(Bucket=ARTIFACTS)["Status"] == "Enabled"
    deny = [
        s for s in statements(s3.get_bucket_policy(Bucket=ARTIFACTS)["Policy"])
        if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert deny and all(a in ("s3:*", ["s3:*"]) for a in (d["Action"] for d in deny))


def test_site_buckets_allow_the_public_only_to_read_objects(initialised: Path, endpoint: str) -> None:
    s3 = client(endpoint, "s3")
    for bucket in SITES.values():
        for statement in statements(s3.get_bucket_policy(Bucket=bucket)["Policy"]):
            assert statement["Effect"] == "Allow"
            assert as_list(statement["Action"]) == ["s3:GetObject"]
            assert as_list(statement["Resource"]) == [f"arn:aws:s3:::{bucket}/*"]


@pytest.fixture
def with_secret(app_dir: Path) -> Path:
    config = app_dir / "sdeliver.yaml"
    text = config.read_text().replace(
        "    LOG_LEVEL: info\n", f"    LOG_LEVEL: info\n    API_KEY: {SECRET}\n  secrets: [API_KEY]\n"
    )
    config.write_text(text)
    return app_dir


def test_a_secret_never_appears_in_output_json_logs_or_the_ledger(sdeliver: Run, with_secret: Path, endpoint: str, hosted_zone: str) -> None:
    seen = []
    for step in WORKFLOW[:3]:
        seen.append(sdeliver("-v", *step[1], cwd=with_secret))
    for args in (("status", "--json"), ("history", "--env", "prod", "--json"), ("reconcile", "--check", "--json", "-v"),
                 ("init", "--check", "-v")):
        seen.append(sdeliver(*args, cwd=with_secret))
    # An error message that involves the environment: drift in it, then a failed check.
    client(endpoint, "lambda").update_function_configuration(
        FunctionName="dromedary-app", Environment={"Variables": {"LOG_LEVEL": "info", "API_KEY": "changed"}})
    seen.append(sdeliver("reconcile", "--check", "-v", cwd=with_secret))
    seen.append(sdeliver("reconcile", "--check", "--json", cwd=with_secret))
    assert all(r.code in (0, 3) for r in seen), [r.output for r in seen if r.code not in (0, 3)]
    for result in seen:
        assert SECRET not in result.output and "changed" not in result.stdout
    s3 = client(endpoint, "s3")
    for item in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"sdeliver/{APP}/")["Contents"]:
        if item["Key"].endswith(".json"):
            assert SECRET.encode() not in s3.get_object(Bucket=ARTIFACTS, Key=item["Key"])["Body"].read(), item["Key"]


@pytest.mark.parametrize("json_", [False, True])
def test_config_show_hides_secrets(sdeliver: Run, with_secret: Path, json_: bool) -> None:
    result = sdeliver("config", "show", *(["--json"] if json_ else []), cwd=with_secret)
    assert result.code == 0
    assert SECRET not in result.output


def hostile_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "ok = True\n")
        archive.writestr("../escaped.txt", "out")
        archive.writestr("/absolute.txt", "out")
        archive.writestr("sub/../../escaped2.txt", "out")
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc")
    return buffer.getvalue()


def test_the_gateway_extracts_code_only_inside_its_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdeliver.local import runner

    monkeypatch.setattr(runner, "code_bytes", lambda configuration, code: hostile_zip())
    monkeypatch.setattr(runner.tempfile, "tempdir", str(tmp_path))
    cache = runner.CodeCache()
    target = cache.get({"FunctionName": "f", "Version": "1", "CodeSha256": "x"}, {})
    outside = [p for p in tmp_path.rglob("*") if p != cache.root and cache.root not in p.parents]
    assert outside == []
    assert {p.name for p in target.rglob("*")} <= {"app.py", "escaped.txt", "absolute.txt", "escaped2.txt", "sub", "link"}
    assert (target / "app.py").read_text() == "ok = True\n"
    assert not any(p.is_symlink() for p in target.rglob("*"))  # "link" is a plain file


def test_ruff_security_rules_are_on_for_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    lint = pyproject["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    disabled = [rule for rule in lint.get("ignore", []) if rule.startswith("S")]
    assert disabled == ["S101"]  # asserts only narrow types for mypy (reason in pyproject)
