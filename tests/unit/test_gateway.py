"""The local gateway: routes an environment's API to the version its alias points to, and
serves its site bucket with website rules, reading the emulator on every request."""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import re
import shutil
import socket
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

import boto3
import pytest
from sdeliver.config import load_config
from sdeliver.local.gateway import BadRequest, Gateway, read_body
from sdeliver.local.proxy import MalformedResponse, match_route, proxy_response, weighted_version

HANDLER = """
import json, os, time
VERSION = {version!r}
def handler(event, context):
    if event["path"] == "/boom":
        raise RuntimeError("boom")
    if event["path"] == "/slow":
        time.sleep(30)
    if event["path"] == "/dictbody":
        return {{"statusCode": 200, "body": {{"a": 1}}}}
    if event["path"] == "/big":
        return {{"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 200)}}
    if event["path"] == "/inject":
        return {{"statusCode": 200, "headers": {{"X-A": "a\\r\\nSet-Cookie: evil=1"}}, "body": "{{}}"}}
    return {{"statusCode": 200, "headers": {{"Content-Type": "application/json"}},
            "body": json.dumps({{"version": VERSION, "path": event["path"],
                                "resource": event["resource"], "query": event["queryStringParameters"],
                                "stage": event["requestContext"]["stage"],
                                "level": os.environ.get("LOG_LEVEL"),
                                "params": event["pathParameters"], "body": event["body"],
                                "variables": event["stageVariables"]}})}}
"""

ROUTES = {
    "/hello": "get", "/boom": "get", "/slow": "get", "/items/{id}": "post",
    "/dictbody": "get", "/big": "get", "/inject": "get",
}


def openapi(function_arn: str) -> str:
    """The API as sdeliver deploys it: each method a proxy to the stage's alias."""
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        f"{function_arn}:${{stageVariables.alias}}/invocations"
    )
    integration = {"type": "aws_proxy", "httpMethod": "POST", "uri": uri}
    document = {
        "openapi": "3.0.1",
        "info": {"title": "dromedary", "description": "test API", "version": "1"},
        "paths": {
            path: {method: {"responses": {"200": {"description": "ok"}},
                            "x-amazon-apigateway-integration": integration}}
            for path, method in ROUTES.items()
        },
    }
    return json.dumps(document)


def zipped(source: str, name: str = "app.py") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, source)
    return buf.getvalue()


CONFIG = """
app: {app}
environments:
  test: {{}}
  prod: {{}}
"""

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def aws_client(endpoint: str, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint, **CREDENTIALS)


class App:
    """What a deploy leaves in the emulator: versions, an alias per env, an API and stages."""

    def __init__(self, endpoint: str, role: str, directory: Path, app: str) -> None:
        (directory / "sdeliver.yaml").write_text(CONFIG.format(app=app), encoding="utf-8")
        self.config = load_config(directory / "sdeliver.yaml")
        self.lam = aws_client(endpoint, "lambda")
        self.apigw = aws_client(endpoint, "apigateway")
        self.s3 = aws_client(endpoint, "s3")
        self.name = self.config.function_name
        created = self.lam.create_function(
            FunctionName=self.name, Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": zipped(HANDLER.format(version="v0"))}, Timeout=10,
            Environment={"Variables": {"LOG_LEVEL": "info"}},
        )
        body = openapi(created["FunctionArn"]).replace("dromedary", self.config.api_name)
        self.api_id = self.apigw.import_rest_api(body=body)["id"]

    def publish(self, version: str, *, timeout: int = 10, runtime: str = "python3.12",
                code: bytes | None = None, handler: str = "app.handler") -> str:
        self.lam.update_function_code(
            FunctionName=self.name, ZipFile=code or zipped(HANDLER.format(version=version))
        )
        self.lam.update_function_configuration(
            FunctionName=self.name, Timeout=timeout, Runtime=runtime, Handler=handler
        )
        return str(self.lam.publish_version(FunctionName=self.name)["Version"])

    def alias(self, env: str, version: str, weights: dict[str, float] | None = None) -> None:
        routing = {"AdditionalVersionWeights": weights or {}}
        try:
            self.lam.update_alias(
                FunctionName=self.name, Name=env, FunctionVersion=version, RoutingConfig=routing
            )
        except self.lam.exceptions.ResourceNotFoundException:
            self.lam.create_alias(
                FunctionName=self.name, Name=env, FunctionVersion=version, RoutingConfig=routing
            )

    def stage(self, env: str, variables: dict[str, str] | None = None) -> None:
        self.apigw.create_deployment(
            restApiId=self.api_id, stageName=env, variables={"alias": env, **(variables or {})}
        )

    def site(self, env: str, files: dict[str, tuple[str, str]], *, website: bool = True) -> str:
        bucket = f"{self.config.app}-{env}-site-123456789012"  # Project.site_bucket, no domain
        self.s3.create_bucket(Bucket=bucket)
        if website:
            self.s3.put_bucket_website(
                Bucket=bucket,
                WebsiteConfiguration={
                    "IndexDocument": {"Suffix": "index.html"},
                    "ErrorDocument": {"Key": "error.html"},
                },
            )
        for key, (body, content_type) in files.items():
            self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)
        return bucket


@pytest.fixture(scope="module")
def account(moto_server: str) -> tuple[str, str]:
    """One emulator account for the module (a reset costs seconds); each test its own app."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=30
    ).close()
    role = aws_client(moto_server, "iam").create_role(
        RoleName="gateway-tests", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    return moto_server, str(role)


@pytest.fixture
def app(account: tuple[str, str], tmp_path: Path) -> App:
    endpoint, role = account
    return App(endpoint, role, tmp_path, f"gw-{next(_apps)}")


_apps = itertools.count()


@pytest.fixture
def gateway(account: tuple[str, str], app: App):  # type: ignore[no-untyped-def]
    gw = Gateway(endpoint=account[0], config=lambda: app.config, rng=random.Random(7))  # noqa: S311
    yield gw
    gw.stop()


def get(gateway: Gateway, path: str, method: str = "GET", body: bytes = b"") -> tuple[int, dict, bytes]:
    response = gateway.handle(method, path, [("Host", "local")], body)
    return response.status, dict(response.headers), response.body


def answer(gateway: Gateway, path: str) -> dict:
    status, _, body = get(gateway, path)
    assert status == 200, body
    return dict(json.loads(body))


def test_api_runs_the_version_the_alias_points_to(app, gateway):
    v1 = app.publish("v1")
    app.publish("v2")
    app.alias("test", v1)
    app.stage("test")
    got = answer(gateway, "/test/api/hello?name=x")
    assert got["version"] == "v1"
    assert got["path"] == "/hello"
    assert got["query"] == {"name": "x"}
    assert got["stage"] == "test"
    assert got["level"] == "info"


def test_the_stages_variables_reach_the_handler_as_stage_variables(app, gateway):
    app.alias("test", app.publish("v1"))
    app.alias("prod", app.publish("v2"))
    app.stage("test", {"TABLE_ITEMS": "gw-test-items", "GREETING": "hi"})
    app.stage("prod", {"TABLE_ITEMS": "gw-prod-items"})
    assert answer(gateway, "/test/api/hello")["variables"] == {
        "alias": "test", "TABLE_ITEMS": "gw-test-items", "GREETING": "hi"}
    assert answer(gateway, "/prod/api/hello")["variables"] == {
        "alias": "prod", "TABLE_ITEMS": "gw-prod-items"}


def test_moving_the_alias_changes_the_code_served_without_restart(app, gateway):
    v1, v2 = app.publish("v1"), app.publish("v2")
    app.alias("test", v1)
    app.stage("test")
    assert answer(gateway, "/test/api/hello")["version"] == "v1"
    app.alias("test", v2)
    assert answer(gateway, "/test/api/hello")["version"] == "v2"
    app.alias("test", v1)  # a rollback
    assert answer(gateway, "/test/api/hello")["version"] == "v1"


def test_each_environment_serves_its_own_alias(app, gateway):
    v1, v2 = app.publish("v1"), app.publish("v2")
    app.alias("test", v2)
    app.alias("prod", v1)
    app.stage("test")
    app.stage("prod")
    assert answer(gateway, "/test/api/hello")["version"] == "v2"
    assert answer(gateway, "/prod/api/hello")["version"] == "v1"


def test_routing_weights_split_traffic_statistically():
    alias = {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}}
    rng = random.Random(42)  # noqa: S311
    counts = Counter(weighted_version(alias, rng.random()) for _ in range(4000))
    assert set(counts) == {"1", "2"}
    assert 0.22 < counts["2"] / 4000 < 0.28


def test_alias_without_weights_always_serves_its_version():
    alias = {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {}}}
    assert {weighted_version(alias, d / 10) for d in range(10)} == {"3"}


def test_weighted_requests_reach_both_versions(app, gateway):
    v1, v2 = app.publish("v1"), app.publish("v2")
    app.alias("test", v1, {v2: 0.5})
    app.stage("test")
    seen = {answer(gateway, "/test/api/hello")["version"] for _ in range(12)}
    assert seen == {"v1", "v2"}


def test_path_parameters_and_body_reach_the_handler(app, gateway):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/items/42", "POST", b'{"a": 1}')
    assert status == 200
    got = json.loads(body)
    assert got["resource"] == "/items/{id}"
    assert got["params"] == {"id": "42"}
    assert got["body"] == '{"a": 1}'


def test_handler_exception_is_502(app, gateway, caplog):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/boom")
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert "RuntimeError: boom" in caplog.text


def test_function_timeout_is_502_as_lambdas_task_timed_out(app, gateway, caplog):
    app.alias("test", app.publish("v1", timeout=1))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/slow")
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert "Task timed out after 1.00 seconds" in caplog.text


def test_integration_timeout_before_the_functions_is_504(account, app):
    gw = Gateway(endpoint=account[0], config=lambda: app.config, integration_timeout=1)
    app.alias("test", app.publish("v1", timeout=5))
    app.stage("test")
    status, _, body = get(gw, "/test/api/slow")
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_a_dict_body_is_a_malformed_proxy_response(app, gateway, caplog):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/dictbody")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert "Malformed Lambda proxy response: body is a dict" in caplog.text


def test_a_response_over_lambdas_6_mb_is_502(app, gateway, caplog):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    assert get(gateway, "/test/api/big")[0] == 502
    assert "exceeded maximum allowed payload size (6291556 bytes)" in caplog.text


def test_crlf_in_a_handler_header_is_502_not_an_injected_header(app, gateway):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    gateway.start()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{gateway.url}/test/api/inject", timeout=10)
    assert refused.value.code == 502
    assert refused.value.headers.get("Set-Cookie") is None


@pytest.mark.parametrize("headers", [
    {"X-Bad": "a\nb"}, {"X-Bad": "a\rb"}, {"X Bad": "a"}, {"X-Bad:": "a"}, {"": "a"},
])
def test_proxy_response_refuses_headers_that_would_break_the_framing(headers):
    with pytest.raises(MalformedResponse):
        proxy_response({"statusCode": 200, "headers": headers, "body": ""})
    with pytest.raises(MalformedResponse):
        multi = {k: [v] for k, v in headers.items()}
        proxy_response({"statusCode": 200, "multiValueHeaders": multi, "body": ""})


def test_proxy_response_body_must_be_a_string_or_absent():
    assert proxy_response({"statusCode": 204}).body == b""
    for body in ({"a": 1}, [1], 5):
        with pytest.raises(MalformedResponse):
            proxy_response({"statusCode": 200, "body": body})


def test_undeclared_route_is_403_missing_authentication_token(app, gateway):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/nowhere")
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_undeclared_method_is_403(app, gateway):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    assert get(gateway, "/test/api/hello", "DELETE")[0] == 403


def test_environment_without_a_stage_is_404(app, gateway):
    app.alias("test", app.publish("v1"))
    assert get(gateway, "/test/api/hello")[0] == 404
    assert get(gateway, "/staging/api/hello")[0] == 404


@pytest.mark.parametrize(("runtime", "why"), [
    ("java21", "it runs python3.x and nodejs22.x/nodejs24.x functions only"),
    ("nodejs20.x", "AWS no longer allows creating or updating functions on it"),
])
def test_a_runtime_the_gateway_cannot_run_is_502_naming_the_reason(app, gateway, caplog,
                                                                  runtime, why):
    app.alias("test", app.publish("v1", runtime=runtime))
    app.stage("test")
    status, _, body = get(gateway, "/test/api/hello")
    assert status == 502
    answer = json.loads(body)
    assert answer["message"] == "Internal server error"
    assert answer["sdeliver"].startswith(f"the local gateway cannot run runtime {runtime}: {why}")
    assert why in caplog.text


def test_routes_prefer_literal_then_param_then_greedy():
    routes = {"/": {"ANY"}, "/{proxy+}": {"ANY"}, "/items/{id}": {"GET"}, "/items/new": {"GET"}}
    assert match_route(routes, "/items/new", "GET") == ("/items/new", {})
    assert match_route(routes, "/items/7", "GET") == ("/items/{id}", {"id": "7"})
    assert match_route(routes, "/a/b/c", "PUT") == ("/{proxy+}", {"proxy": "a/b/c"})
    assert match_route(routes, "/", "GET") == ("/", {})


def test_moto_any_method_name_matches_every_method():
    routes = {"/{proxy+}": {"X-AMAZON-APIGATEWAY-ANY-METHOD"}}
    assert match_route(routes, "/x", "PATCH") == ("/{proxy+}", {"proxy": "x"})


# -- the site ------------------------------------------------------------------------------

SITE = {
    "index.html": ("<h1>home</h1>", "text/html"),
    "app.js": ("console.log(1)", "application/javascript"),
    "docs/index.html": ("<h1>docs</h1>", "text/html"),
    "error.html": ("<h1>missing</h1>", "text/html"),
}


def test_site_root_serves_index_html(app, gateway):
    app.site("test", SITE)
    status, headers, body = get(gateway, "/test/site/")
    assert (status, headers["Content-Type"], body) == (200, "text/html", b"<h1>home</h1>")


def test_site_file_keeps_its_content_type(app, gateway):
    app.site("test", SITE)
    status, headers, _ = get(gateway, "/test/site/app.js")
    assert (status, headers["Content-Type"]) == (200, "application/javascript")


def test_site_directory_serves_its_index(app, gateway):
    app.site("test", SITE)
    assert get(gateway, "/test/site/docs/")[2] == b"<h1>docs</h1>"
    status, headers, _ = get(gateway, "/test/site/docs")
    assert (status, headers["Location"]) == (302, "/test/site/docs/")


def test_site_missing_key_serves_error_html_with_404(app, gateway):
    app.site("test", SITE)
    status, _, body = get(gateway, "/test/site/nope.html")
    assert (status, body) == (404, b"<h1>missing</h1>")


def test_site_without_error_page_is_a_plain_404(app, gateway):
    app.site("test", {"index.html": ("home", "text/html")})
    status, headers, _ = get(gateway, "/test/site/nope.html")
    assert status == 404
    assert headers["Content-Type"].startswith("text/plain")


def test_site_without_trailing_slash_redirects(app, gateway):
    status, headers, _ = get(gateway, "/test/site")
    assert (status, headers["Location"]) == (302, "/test/site/")


def test_gateway_answers_over_http(app, gateway):
    app.site("test", SITE)
    app.alias("test", app.publish("v1"))
    app.stage("test")
    gateway.start()
    with urllib.request.urlopen(f"{gateway.url}/test/api/hello", timeout=10) as resp:
        assert json.load(resp)["version"] == "v1"
    with urllib.request.urlopen(f"{gateway.url}/test/site/", timeout=10) as resp:
        assert resp.read() == b"<h1>home</h1>"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{gateway.url}/test/api/nowhere", timeout=10)
    assert missing.value.code == 403


# -- request framing over HTTP ---------------------------------------------------------------


@pytest.fixture
def served(account: tuple[str, str], app: App):  # type: ignore[no-untyped-def]
    """A started gateway with a short socket timeout (a silent client is dropped fast)."""
    gw = Gateway(endpoint=account[0], config=lambda: app.config, socket_timeout=0.5)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def bare():  # type: ignore[no-untyped-def]
    """A started gateway with no app: a request refused for its framing never needs one."""
    gw = Gateway(endpoint="http://127.0.0.1:9", config=lambda: None, socket_timeout=0.5)
    gw.start()
    yield gw
    gw.stop()


def raw(gateway: Gateway, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are; the status and body of the answer (read until it ends)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: local\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "5, 6", "+5"])
def test_a_bad_content_length_is_400(bare, length):
    status, body = raw(bare, post("/test/api/items/1", f"Content-Length: {length}\r\n"))
    assert status == 400
    assert json.loads(body) == {"message": "Bad Request"}


def test_a_content_length_of_non_ascii_digits_is_400():
    with pytest.raises(BadRequest) as refused:
        read_body(_headers("Content-Length: \u0663"), io.BytesIO(b"abc"))
    assert refused.value.response.status == 400


def test_a_body_shorter_than_its_content_length_is_400_not_a_blocked_thread(bare):
    status, _ = raw(bare, post("/test/api/items/1", "Content-Length: 10\r\n", b"abc"))
    assert status == 400


def test_a_body_over_10_mb_is_413(bare):
    status, body = raw(bare, post("/test/api/items/1", f"Content-Length: {10 * 1024 * 1024 + 1}\r\n"))
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


def test_a_chunked_body_over_10_mb_is_413():
    chunk = b"%x\r\n" % (6 * 1024 * 1024) + b"x" * (6 * 1024 * 1024) + b"\r\n"
    with pytest.raises(BadRequest) as refused:
        read_body(_headers("Transfer-Encoding: chunked"), io.BytesIO(chunk * 2 + b"0\r\n\r\n"))
    assert refused.value.response.status == 413


def _headers(*lines: str):  # type: ignore[no-untyped-def]
    import email.parser
    import http.client

    text = "".join(f"{line}\r\n" for line in lines) + "\r\n"
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


@pytest.mark.parametrize("chunked", [
    b"3\r\nabc", b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"3\r\nabc\r\n0\r\n",
])
def test_a_malformed_chunked_body_is_400(chunked):
    with pytest.raises(BadRequest) as refused:
        read_body(_headers("Transfer-Encoding: chunked"), io.BytesIO(chunked))
    assert refused.value.response.status == 400


def test_a_chunked_body_reaches_the_handler(app, served):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    chunks = b"4\r\n{\"a\"\r\n5;ext=1\r\n: 1}\n\r\n0\r\nX-Trailer: t\r\n\r\n"
    status, body = raw(served, post("/test/api/items/7", "Transfer-Encoding: chunked\r\n", chunks))
    assert status == 200
    assert json.loads(body)["body"] == '{"a": 1}\n'


def test_content_length_with_transfer_encoding_is_400():
    headers = _headers("Transfer-Encoding: chunked", "Content-Length: 3")
    with pytest.raises(BadRequest) as refused:
        read_body(headers, io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n"))
    assert refused.value.response.status == 400


# -- the request log -------------------------------------------------------------------------


def test_each_request_is_logged_with_status_and_time(app, gateway, caplog):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    caplog.set_level(logging.INFO, logger="sdeliver.gateway")
    get(gateway, "/test/api/hello?secret=x")
    assert re.search(r"GET /test/api/hello 200 \d+ ms$", caplog.text, re.M)


def test_a_failed_request_logs_the_handlers_exception_and_output_tail(app, gateway, caplog):
    app.alias("test", app.publish("v1"))
    app.stage("test")
    get(gateway, "/test/api/boom")
    line = next(r for r in caplog.records if "GET /test/api/boom 502" in r.getMessage())
    assert line.levelno == logging.WARNING
    assert "failed: RuntimeError: boom" in line.getMessage()
    assert "| Traceback" in line.getMessage()  # the handler's output, its traceback
    assert 'raise RuntimeError("boom")' in line.getMessage()


# -- Node.js handlers --------------------------------------------------------------------------

NODE_HANDLER = """
export const handler = async (event, context) => ({
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ path: event.path, stage: event.requestContext.stage,
                         table: event.stageVariables && event.stageVariables.alias,
                         arn: context.invokedFunctionArn, endpoint: process.env.AWS_ENDPOINT_URL }),
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="no 'node' on PATH to run nodejs22.x")
def test_a_nodejs_function_answers_through_the_gateway(app, gateway, account):
    code = zipped(NODE_HANDLER, "index.mjs")
    app.alias("test", app.publish("v1", runtime="nodejs22.x", code=code, handler="index.handler"))
    app.stage("test")
    got = answer(gateway, "/test/api/hello")
    assert (got["path"], got["stage"], got["table"]) == ("/hello", "test", "test")
    assert got["arn"].endswith(f":function:{app.name}:test")
    assert got["endpoint"] == account[0]
