"""Node.js handlers run locally as the nodejs22.x/nodejs24.x runtimes run them: the proxy
event, a context, the timeout, CommonJS and ES modules, async and callback handlers, and the
emulator's endpoint in the forms the AWS SDKs for JavaScript read. Also: which runtimes the
local gateway can run, and the Python interpreter it picks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from sdeliver.local import runner
from sdeliver.local.runner import local_runtime_problem, python_for, run_handler

needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="no 'node' on PATH: the Node.js runner needs one"
)
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:shop-app"
EVENT = {"path": "/hello", "httpMethod": "GET", "body": None}


@pytest.fixture(autouse=True)
def fresh_warnings() -> None:
    runner._warned.clear()


def invoke(code: Path, files: dict[str, str], *, runtime: str = "nodejs22.x",
           handler: str = "index.handler", timeout: float = 5) -> runner.Invocation:
    for name, text in files.items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text, encoding="utf-8")
    configuration: dict[str, Any] = {
        "FunctionName": "shop-app", "FunctionArn": f"{ARN}:7", "Runtime": runtime,
        "Handler": handler, "Version": "7", "MemorySize": 256, "Timeout": timeout,
        "Environment": {"Variables": {"TABLE": "shop-test"}},
    }
    return run_handler(
        code, configuration, EVENT, timeout=timeout, endpoint="http://127.0.0.1:4566",
        request_id="req-1", invoked_arn=f"{ARN}:test",
    )


def result(ran: runner.Invocation) -> Any:
    assert ran.outcome is not None and ran.outcome.get("ok"), (ran.outcome, ran.log)
    return ran.outcome["result"]


ECHO = """
  ({ event, name: context.functionName, arn: context.invokedFunctionArn,
     id: context.awsRequestId, memory: context.memoryLimitInMB,
     remaining: context.getRemainingTimeInMillis(),
     endpoint: process.env.AWS_ENDPOINT_URL, region: process.env.AWS_REGION,
     key: process.env.AWS_ACCESS_KEY_ID, table: process.env.TABLE })
"""


@needs_node
def test_a_commonjs_async_handler_gets_the_event_context_and_endpoint(tmp_path):
    got = result(invoke(tmp_path, {"index.js": f"exports.handler = async (event, context) => {ECHO};"}))
    assert got["event"] == EVENT
    assert got["name"] == "shop-app"
    assert got["arn"] == f"{ARN}:test"  # alias-qualified, as API Gateway invokes it
    assert got["id"] == "req-1"
    assert str(got["memory"]) == "256"
    assert 0 < got["remaining"] <= 5000
    assert got["endpoint"] == "http://127.0.0.1:4566"  # what AWS SDK v3 reads
    assert (got["region"], got["key"], got["table"]) == ("eu-west-1", "local", "shop-test")


@needs_node
def test_an_es_module_handler_runs_from_mjs(tmp_path):
    source = f"export const handler = async (event, context) => {ECHO};"
    assert result(invoke(tmp_path, {"index.mjs": source}))["name"] == "shop-app"


@needs_node
def test_an_es_module_handler_runs_from_js_under_type_module(tmp_path):
    files = {
        "package.json": json.dumps({"type": "module"}),
        "src/app.js": "import { sep } from 'node:path';\n"
                      "export async function handler(event) { return { sep, path: event.path }; }",
    }
    assert result(invoke(tmp_path, files, handler="src/app.handler")) == {"sep": "/", "path": "/hello"}


@needs_node
def test_console_output_is_the_invocations_log(tmp_path):
    source = "exports.handler = async () => { console.log('hello log'); console.error('oops'); return 1; };"
    ran = invoke(tmp_path, {"index.js": source})
    assert result(ran) == 1
    assert "hello log" in ran.log and "oops" in ran.log


@needs_node
def test_a_callback_handler_answers_on_nodejs22(tmp_path):
    source = "exports.handler = (event, context, callback) => { callback(null, {statusCode: 201}); };"
    assert result(invoke(tmp_path, {"index.js": source})) == {"statusCode": 201}


@needs_node
def test_a_callback_handler_not_waiting_for_the_event_loop_answers_at_once(tmp_path):
    source = """exports.handler = (event, context, callback) => {
      context.callbackWaitsForEmptyEventLoop = false;
      setTimeout(() => {}, 60000);
      callback(null, 'done');
    };"""
    ran = invoke(tmp_path, {"index.js": source}, timeout=3)
    assert not ran.timed_out
    assert result(ran) == "done"


@needs_node
def test_a_callback_handler_is_refused_on_nodejs24(tmp_path):
    source = "exports.handler = (event, context, callback) => callback(null, 1);"
    ran = invoke(tmp_path, {"index.js": source}, runtime="nodejs24.x")
    assert ran.outcome is not None
    assert ran.outcome["errorType"] == "Runtime.CallbackHandlerDeprecated"


@needs_node
def test_an_async_handler_ends_when_its_promise_settles_despite_pending_timers(tmp_path):
    source = "exports.handler = async () => { setInterval(() => {}, 1000); return 'ok'; };"
    ran = invoke(tmp_path, {"index.js": source}, timeout=3)
    assert not ran.timed_out
    assert result(ran) == "ok"


@needs_node
def test_a_thrown_error_is_the_invocations_error(tmp_path):
    source = "exports.handler = async () => { throw new TypeError('bad input'); };"
    ran = invoke(tmp_path, {"index.js": source})
    assert ran.outcome == {"ok": False, "errorType": "TypeError", "errorMessage": "bad input"}
    assert "TypeError: bad input" in ran.log


@needs_node
def test_a_missing_handler_is_an_error_naming_it(tmp_path):
    ran = invoke(tmp_path, {"index.js": "exports.other = async () => 1;"})
    assert ran.outcome is not None
    assert ran.outcome["errorType"] == "Runtime.HandlerNotFound"


@needs_node
def test_the_functions_timeout_is_honoured(tmp_path):
    source = "exports.handler = () => new Promise(() => setTimeout(() => {}, 60000));"
    assert invoke(tmp_path, {"index.js": source}, timeout=1).timed_out


@needs_node
def test_an_sdk_v2_the_function_ships_is_pointed_at_the_emulator(tmp_path):
    fake_sdk = "module.exports = { config: { update(o) { Object.assign(this, o); } } };"
    source = "const AWS = require('aws-sdk');\n" \
             "exports.handler = async () => ({ endpoint: AWS.config.endpoint, path: AWS.config.s3ForcePathStyle });"
    files = {"node_modules/aws-sdk/index.js": fake_sdk, "index.js": source}
    assert result(invoke(tmp_path, files)) == {"endpoint": "http://127.0.0.1:4566", "path": True}


@needs_node
def test_a_different_local_node_major_is_warned_once(tmp_path, caplog):
    major = runner.node_version()[1]  # type: ignore[index]
    other = "nodejs24.x" if major != 24 else "nodejs22.x"
    source = "exports.handler = async () => 1;"
    invoke(tmp_path, {"index.js": source}, runtime=other)
    invoke(tmp_path, {"index.js": source}, runtime=other)
    warnings = [r for r in caplog.records if f"running {other} functions on the local node" in r.getMessage()]
    assert len(warnings) == 1


# -- which runtimes run here -------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13", "python3.9"])
def test_python_runtimes_run_here(runtime):
    assert local_runtime_problem(runtime) is None


@needs_node
@pytest.mark.parametrize("runtime", ["nodejs22.x", "nodejs24.x"])
def test_current_node_runtimes_run_here(runtime):
    assert local_runtime_problem(runtime) is None


def test_node_runtimes_without_node_are_refused_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = local_runtime_problem("nodejs22.x")
    assert problem == ("the local gateway cannot run runtime nodejs22.x: no working 'node' on "
                       "PATH (install Node.js 22)")


@pytest.mark.parametrize("runtime", ["nodejs20.x", "nodejs18.x"])
def test_node_runtimes_aws_no_longer_accepts_are_refused(runtime):
    assert "AWS no longer allows creating or updating" in (local_runtime_problem(runtime) or "")


@pytest.mark.parametrize("runtime", ["java21", "provided.al2023", "dotnet8", ""])
def test_other_runtimes_are_refused(runtime):
    problem = local_runtime_problem(runtime) or ""
    assert problem.startswith("the local gateway cannot run runtime ")
    assert "python3.x and nodejs22.x/nodejs24.x" in problem


def test_a_runtime_that_cannot_run_is_not_started(tmp_path):
    with pytest.raises(ValueError, match="cannot run runtime java21"):
        invoke(tmp_path, {}, runtime="java21")


# -- the Python interpreter --------------------------------------------------------------------


def test_this_interpreters_own_runtime_runs_on_it():
    assert python_for(f"python3.{sys.version_info.minor}") == sys.executable


def test_the_declared_runtimes_interpreter_is_used_when_installed(monkeypatch, tmp_path):
    fake = tmp_path / "python3.77"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert python_for("python3.77") == str(fake)


def test_a_missing_interpreter_falls_back_to_this_one_with_one_warning(monkeypatch, tmp_path,
                                                                      caplog):
    broken = tmp_path / "python3.78"  # like a pyenv shim of a version not selected
    broken.write_text("#!/bin/sh\necho 'pyenv: python3.78: command not found' >&2\nexit 127\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    caplog.set_level(logging.WARNING, logger="sdeliver.gateway")
    assert python_for("python3.78") == sys.executable
    assert python_for("python3.79") == sys.executable
    assert python_for("python3.78") == sys.executable
    warned = [r.getMessage() for r in caplog.records if "on PATH: running" in r.getMessage()]
    assert len(warned) == 2
    assert warned[0].startswith("no working python3.78 on PATH: running python3.78 functions on Python 3.")


def test_a_handler_on_another_interpreter_still_finds_boto3_as_on_lambda(monkeypatch, tmp_path):
    bare = tmp_path / "bin" / "python3.77"  # an interpreter without this environment's packages
    bare.parent.mkdir()
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bare.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "app.py").write_text(
        "import sys, boto3\n"
        "def handler(event, context):\n"
        "    return {'boto3': boto3.__version__, 'site': any('site-packages' in p for p in sys.path[:-1])}\n"
    )
    configuration = {"FunctionName": "shop-app", "FunctionArn": f"{ARN}:1", "Runtime": "python3.77",
                     "Handler": "app.handler", "Version": "1"}
    ran = run_handler(tmp_path, configuration, EVENT, timeout=20, endpoint="http://127.0.0.1:9",
                      request_id="r")
    got = result(ran)
    assert got["boto3"] and got["site"] is False


def test_a_python_handlers_context_is_alias_qualified_and_counts_down_from_its_timeout(tmp_path):
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n"
        "    return [context.invoked_function_arn, context.get_remaining_time_in_millis()]\n"
    )
    configuration = {"FunctionName": "shop-app", "FunctionArn": f"{ARN}:3", "Version": "3",
                     "Runtime": f"python3.{sys.version_info.minor}", "Handler": "app.handler",
                     "Timeout": 60}
    ran = run_handler(tmp_path, configuration, EVENT, timeout=5, endpoint="http://127.0.0.1:9",
                      request_id="r", invoked_arn=f"{ARN}:prod")
    arn, remaining = result(ran)
    assert arn == f"{ARN}:prod"
    assert 5000 < remaining <= 60000  # the function's 60 s, not the caller's 5 s
