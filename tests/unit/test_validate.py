"""`config validate` checks the files sdeliver.yaml names and the runtime (issue 13, 7)."""

from __future__ import annotations

from pathlib import Path

import pytest


def validate(sdeliver, project_dir: Path):  # type: ignore[no-untyped-def]
    return sdeliver("config", "validate", cwd=project_dir)


def edit(project_dir: Path, old: str, new: str) -> None:
    path = project_dir / "sdeliver.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(project_dir: Path, text: str) -> int:
    lines = (project_dir / "sdeliver.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_example_project_is_valid(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = validate(sdeliver, project_dir)
    assert result.code == 0, result.output


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("source: app/", "source: build/", "function.source: build/ does not exist in"),
    ("source: site/", "source: public/", "site.source: public/ does not exist in"),
    ("openapi: api/openapi.yaml", "openapi: api/missing.yaml",
     "api.openapi: api/missing.yaml: no such file"),
    ("runtime: python3.12", "runtime: python2.7",
     "function.runtime: python2.7 is deprecated: AWS no longer accepts it"),
    ("runtime: python3.12", "runtime: nodejs18.x", "function.runtime: nodejs18.x is deprecated"),
])
def test_each_problem_is_exit_2_with_file_and_line(sdeliver, project_dir: Path, old: str,  # type: ignore[no-untyped-def]
                                                   new: str, expected: str) -> None:
    edit(project_dir, old, new)
    result = validate(sdeliver, project_dir)
    assert result.code == 2
    line = line_of(project_dir, new)
    assert result.stderr.startswith(f"error: sdeliver.yaml:{line}: {expected}"), result.stderr


@pytest.mark.parametrize("runtime", ["python3.10", "python3.13", "nodejs22.x", "nodejs24.x"])
def test_current_runtimes_are_accepted(sdeliver, project_dir: Path, runtime: str) -> None:  # type: ignore[no-untyped-def]
    edit(project_dir, "runtime: python3.12", f"runtime: {runtime}")
    assert validate(sdeliver, project_dir).code == 0


@pytest.mark.parametrize(("content", "expected"), [
    ("openapi: 3.0.1\npaths: [unclosed\n", "api/openapi.yaml: line 3: malformed YAML"),
    ("title: not an api\n", "api/openapi.yaml: is not an OpenAPI 3 or Swagger 2.0 document"),
])
def test_a_malformed_openapi_file_is_named(sdeliver, project_dir: Path, content: str,  # type: ignore[no-untyped-def]
                                           expected: str) -> None:
    (project_dir / "api" / "openapi.yaml").write_text(content)
    result = validate(sdeliver, project_dir)
    assert result.code == 2
    line = line_of(project_dir, "openapi: api/openapi.yaml")
    assert result.stderr.startswith(f"error: sdeliver.yaml:{line}: api.openapi: {expected}")


def test_every_problem_is_listed(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    edit(project_dir, "runtime: python3.12", "runtime: python3.8")
    edit(project_dir, "source: site/", "source: public/")
    result = validate(sdeliver, project_dir)
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: sdeliver.yaml: 2 errors:"
    assert "function.runtime" in lines[1] and "site.source" in lines[2]


def test_a_missing_site_directory_at_deploy_is_a_configuration_error(  # type: ignore[no-untyped-def]
        sdeliver, project_dir: Path, endpoint: str) -> None:
    edit(project_dir, "python -m pip install -r requirements.txt -t app/vendor --quiet",
         "python -c pass")
    edit(project_dir, "source: site/", "source: public/")
    result = sdeliver("deploy", "--env", "test", cwd=project_dir)
    assert result.code == 2, result.output
    assert "site.source public/ does not exist in" in result.stderr



def build_in(project_dir: Path, runner: str) -> None:
    path = project_dir / "sdeliver.yaml"
    text = path.read_text().rstrip("\n")
    assert text.splitlines()[-1].startswith("  approval:")  # pipeline: is the last section
    path.write_text(text + f"\n  build: {runner}\n")


def test_commands_needing_pip_and_pytest_warn_when_the_pipeline_builds_in_lambda(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    build_in(project_dir, "lambda")
    result = validate(sdeliver, project_dir)
    assert result.code == 0, result.output
    assert f"sdeliver.yaml:{line_of(project_dir, '- python -m pip')}: build.commands.0: " \
        "needs pip, which the pipeline's worker Lambda lacks" in result.stderr
    assert "environments.test.e2e: needs pytest" in result.stderr
    assert "use build: codebuild" in result.stderr


def test_the_default_codebuild_runner_has_the_toolchains(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = validate(sdeliver, project_dir)
    assert result.code == 0, result.output
    assert "warning:" not in result.stderr


def test_warnings_are_listed_in_the_json_document(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    build_in(project_dir, "lambda")
    result = sdeliver("--json", "config", "validate", cwd=project_dir)
    assert result.code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    assert [w.split(": ")[1] for w in warnings] == [
        "build.commands.0", "environments.test.e2e", "environments.prod.e2e"]


def test_a_command_the_lambda_has_does_not_warn() -> None:
    from sdeliver.validate import NOT_IN_LAMBDA, _tools

    assert not _tools("python tests/e2e/check.py") & NOT_IN_LAMBDA
    assert _tools("cd web && npm ci; FOO=1 node build.js") >= {"npm", "node"}


def test_a_foreign_integration_is_a_warning_not_an_error(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    uri = ("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:"
           "eu-west-1:999999999999:function:other:${stageVariables.lambdaAlias}/invocations")
    path = project_dir / "api" / "openapi.yaml"
    path.write_text(path.read_text().replace(
        "  /hello:\n    get:\n",
        f"  /hello:\n    get:\n      x-amazon-apigateway-integration: {{type: aws_proxy, "
        f"uri: '{uri}'}}\n", 1))
    assert "x-amazon-apigateway-integration" in path.read_text()

    result = validate(sdeliver, project_dir)

    assert result.code == 0, result.output
    assert "warning" in result.output and "GET /hello" in result.output
    assert "${stageVariables.lambdaAlias}" in result.output and "eu-west-1" in result.output
    assert "deploy refuses it unless api.allow_foreign_integrations is true" in result.output


def test_a_runtime_local_mode_cannot_run_is_a_warning_and_refused_by_local(sdeliver, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    path = project_dir / "sdeliver.yaml"
    path.write_text(path.read_text().replace("runtime: python3.12", "runtime: java21"))
    result = validate(sdeliver, project_dir)
    assert result.code == 0, result.output
    assert "function.runtime: the local gateway cannot run runtime java21" in result.stderr
    refused = sdeliver("--local", "init", "--yes", cwd=project_dir)
    assert refused.code == 2, refused.output
    assert "cannot run runtime java21" in refused.stderr
