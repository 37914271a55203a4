"""The local gateway: the data plane the emulator lacks.

moto stores API Gateway definitions and Lambda versions but routes no request and runs no
code. The gateway does both, reading everything from the emulator on every request (so a
deploy, a promotion or a rollback changes what it serves at once):

  /<env>/api/<path>   the REST API's stage <env> → its `alias` stage variable → the version
                      the alias points to (RoutingConfig weights honoured) → that version's
                      Python handler, run in a subprocess with a REST proxy event
  /<env>/site/<path>  the environment's site bucket, with S3 website rules
  /<env>/<path>       (site.hosting cloudfront) what the environment's distribution answers:
                      /<env>/api/... the API as above, anything else the live release's
                      object releases/<id>/<path> (`/` + index.html), the release read from
                      the environment's KeyValueStore on every request (see `distribution`)

Answers follow API Gateway's (REST API, Lambda proxy integration):
  - a handler that raises, times out (Lambda's "Task timed out"), answers over Lambda's
    6 MB response limit or answers a malformed proxy response (a non-string body, a header
    with CR/LF) → 502 `Internal server error`;
  - no answer within API Gateway's 29 s integration timeout → 504 `Endpoint request timed out`;
  - a request body over 10 MB → 413; a body that does not match its framing (bad or
    negative Content-Length, a short body, bad chunks) → 400, never a blocked thread;
  - a path or method the API does not declare → 403 `Missing Authentication Token`.
An environment with no stage yet is not API Gateway's to answer: 404 `Not Found`; one whose
stage still serves sdeliver's "no release yet" deployment → 503 `no release yet`.
Integrations: `aws_proxy` to this function runs the handler; `mock` (CORS preflights) answers
its integration response (static headers, the allowed-origin template sdeliver writes);
any other type, or a function not this app's, → 501 naming it, never a proxied call.
With s3-website hosting the API answers under API_HOST (`localhost`), the site under HOST
(`127.0.0.1`): two origins, as on AWS, so a site that forgets CORS fails here too; with
cloudfront hosting both are on HOST, one origin, as behind the distribution. The gateway
adds no CORS header to the function's answers (API Gateway does not, for proxy integrations).
A configuration fault (no alias, no function) → 500; a runtime the gateway cannot run →
502 whose body says why. Every request is logged (method, path, status, ms, and why an
error answer was given, with the tail of the handler's output) on `sdeliver.gateway`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..aws import Aws
from ..endpoints import HOST, env_urls
from ..errors import AwsError, OperationFailed
from ..openapi import CORS_ORIGIN, LAMBDA_URI, STAGE_VARIABLE, gateway_responses, template_origins
from ..project import Project
from ..resources import cdn
from ..resources.api import NO_RELEASE
from ..resources.cdn import is_cloudfront
from .edge import install_client
from .proxy import (
    ANY_METHODS,
    MalformedResponse,
    Request,
    Response,
    bad_gateway,
    forbidden,
    internal_error,
    match_route,
    proxy_event,
    proxy_response,
    weighted_version,
)
from .runner import CodeCache, Invocation, local_runtime_problem, run_handler

if TYPE_CHECKING:
    from ..aws import Aws
    from ..config import Config
    from ..project import Project

log = logging.getLogger("sdeliver.gateway")

# API Gateway gives up on an integration after 29 seconds, whatever the function's timeout.
INTEGRATION_TIMEOUT = 29.0
# API Gateway's request payload limit, and Lambda's for a synchronous response (6 MB + 100).
REQUEST_LIMIT = 10 * 1024 * 1024
RESPONSE_LIMIT = 6 * 1024 * 1024 + 100
# How long a connection may stay silent while a request is read (a short body, an idle
# client): the thread then answers 400 or closes, instead of waiting forever.
SOCKET_TIMEOUT = 30.0
# After a 413 the body still being sent is read and dropped (so the client can read the
# answer instead of a reset), up to this much.
DRAIN_LIMIT = 64 * 1024 * 1024
TAIL_LINES = 8
MISSING_CODES = {"NotFoundException", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket"}


class Gateway:
    """A threaded HTTP server on HOST:port serving every environment's API and site."""

    def __init__(
        self,
        *,
        endpoint: str,
        config: Callable[[], Config | None],
        port: int = 0,
        rng: random.Random | None = None,
        python: str | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.port = port
        self.rng = rng or random.Random()  # noqa: S311 - traffic weights, not secrets
        self.python = python  # None: each runtime's own interpreter
        self.integration_timeout = integration_timeout
        self.socket_timeout = socket_timeout
        self._rng_lock = threading.Lock()
        self._aws: dict[str, Aws] = {}
        self._code = CodeCache()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        install_client(endpoint)  # reads of the live release (CloudFront hosting)

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._server = ThreadingHTTPServer((HOST, self.port), _handler_class(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._code.clear()

    # -- requests

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str = HOST) -> Response:
        started = time.monotonic()
        response = self._handle(method, target, headers, body, source_ip)
        log_request(method, target, response, started)
        return response

    def _handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                source_ip: str) -> Response:
        url = urlsplit(target)
        parts = url.path.split("/", 3)  # "", env, kind, rest
        if url.path in ("", "/"):
            return self._index()
        env = parts[1]
        try:
            project = self._project()
            if project is not None and env in project.config.environments and is_cloudfront(
                project
            ):
                return self.distribution(project, env, method, url, headers, body, source_ip)
        except Exception:  # one request's fault never stops the gateway
            log.exception("%s %s failed", method, target)
            return internal_error("the gateway failed (traceback above)")
        if len(parts) < 3 or parts[2] not in ("api", "site"):
            return Response.message(404, "Not Found")
        kind = parts[2]
        if len(parts) == 3:
            if kind == "site":  # relative links in the site need the trailing slash
                return Response(302, headers=[("Location", f"/{env}/site/")])
            parts.append("")
        request = Request(
            method=method.upper(),
            path="/" + unquote(parts[3]),
            query=parse_qsl(url.query, keep_blank_values=True),
            headers=headers,
            body=body,
            source_ip=source_ip,
        )
        try:
            if project is None:
                return Response.message(404, "no sdeliver.yaml: the local gateway has no app")
            if env not in project.config.environments:
                return Response.message(404, "Not Found")
            if kind == "api":
                return self.api(project, env, request)
            return self.site(project, env, request)
        except Exception:  # one request's fault never stops the gateway
            log.exception("%s %s failed", method, target)
            return internal_error("the gateway failed (traceback above)")

    def _index(self) -> Response:
        config = self.config()
        envs = list(config.environments) if config is not None else []
        urls = {env: env_urls(self.url, config, env) for env in envs}
        document = {
            "gateway": "sdeliver local",
            "endpoint": self.endpoint,
            "app": config.app if config is not None else None,
            "environments": {env: {"api": api, "site": site} for env, (api, site) in urls.items()},
        }
        return Response(200, json.dumps(document).encode(), [("Content-Type", "application/json")])

    def _project(self) -> Project | None:
        config = self.config()
        if config is None:
            return None
        if config.region not in self._aws:
            self._aws[config.region] = Aws(region=config.region, endpoint_url=self.endpoint)
        return Project(config=config, aws=self._aws[config.region])

    # -- the API

    def api(self, project: Project, env: str, request: Request) -> Response:
        response = self._api(project, env, request)
        if response.status >= 400 and not response.from_function and project.config.api.cors:
            # The gateway responses (DEFAULT_4XX/5XX) sdeliver adds with CORS.
            parameters = (gateway_responses(project).get("DEFAULT_4XX") or {}).get(
                "responseParameters") or {}
            origin = parameters.get(f"gatewayresponse.header.{CORS_ORIGIN}")
            if origin:
                response.headers.append((CORS_ORIGIN, origin.strip("'")))
        return response

    def _api(self, project: Project, env: str, request: Request) -> Response:
        aws = project.aws
        api_id = self._rest_api_id(project)
        if api_id is None:
            return Response.message(404, "Not Found")
        stage = _read(aws, "apigateway", "get_stage", restApiId=api_id, stageName=env)
        if stage is None:
            return Response.message(404, "Not Found")
        if self._unreleased(aws, api_id, stage):
            return Response.message(503, "no release yet",
                                    f"stage {env} serves no release yet (deploy or promote)")
        resources = list(aws.paginate("apigateway", "get_resources", "items", restApiId=api_id))
        routes = {r["path"]: {m.upper() for m in r.get("resourceMethods") or {}}
                  for r in resources}
        route = match_route(routes, request.path, request.method)
        if route is None:
            return forbidden()
        resource = next(r for r in resources if r["path"] == route[0])
        methods = {m.upper(): m for m in resource.get("resourceMethods") or {}}
        method = methods.get(request.method) or next(
            methods[m] for m in methods if m in ANY_METHODS)
        integration = _read(aws, "apigateway", "get_integration", restApiId=api_id,
                            resourceId=resource["id"], httpMethod=method)
        kind = str((integration or {}).get("type") or "").upper()
        where = f"{request.method} {route[0]}"
        if integration is None:
            return internal_error(f"{where} has no integration")
        if kind == "MOCK":
            return mock_response(integration, request)
        variables = dict(stage.get("variables") or {})
        target = _lambda_target(str(integration.get("uri") or ""), variables)
        if kind != "AWS_PROXY" or target is None:
            return not_implemented(
                f"{where}: the local gateway runs only aws_proxy integrations of this app's "
                f"function (this one is {kind.lower() or 'untyped'}"
                f"{' to ' + str(integration.get('uri')) if integration.get('uri') else ''})"
            )
        function, qualifier = target
        if function != project.function_name:
            return not_implemented(
                f"{where}: the integration invokes function {function}, not this app's "
                f"{project.function_name}; the local gateway runs only this app's function"
            )
        if not qualifier:
            return internal_error(
                f"stage {env} of API {project.api_name} has no 'alias' stage variable"
            )
        version = self.pick_version(aws, function, qualifier)
        if version is None:
            return internal_error(f"function {function} has no alias or version {qualifier}")
        found = _read(aws, "lambda", "get_function", FunctionName=function, Qualifier=version)
        if found is None:
            return internal_error(f"function {function} has no version {version}")
        configuration = found["Configuration"]
        runtime = str(configuration.get("Runtime", ""))
        problem = local_runtime_problem(runtime)
        if problem is not None:
            return bad_gateway(f"{function}:{version}: {problem}", reason=problem)
        code_dir = self._code.get(configuration, found.get("Code") or {})
        request_id = str(uuid.uuid4())
        event = proxy_event(
            request, env=env, resource=route[0], path_params=route[1],
            stage_variables=variables, api_id=api_id, request_id=request_id,
        )
        function_timeout = float(configuration.get("Timeout", 3))
        timeout = min(function_timeout, self.integration_timeout)
        unqualified = ":".join(str(configuration.get("FunctionArn", "")).split(":")[:7])
        ran = run_handler(
            code_dir, configuration, event, timeout=timeout, endpoint=self.endpoint,
            request_id=request_id, python=self.python, invoked_arn=f"{unqualified}:{qualifier}",
        )
        for line in ran.log.splitlines():
            log.info("%s:%s %s", function, version, line)
        return self._answer(f"{function}:{version}", ran, function_timeout)

    def _answer(self, name: str, ran: Invocation, function_timeout: float) -> Response:
        """The response API Gateway gives for what the invocation did."""
        tail = _tail(ran.log)
        if ran.timed_out and function_timeout > self.integration_timeout:
            # API Gateway stopped waiting before Lambda did.
            limit = self.integration_timeout
            detail = f"{name}: no answer within the {limit:g} s integration timeout"
            return Response.message(504, "Endpoint request timed out", detail=detail + tail)
        if ran.timed_out:  # Lambda's error for the function; API Gateway's 502
            detail = f"{name}: Task timed out after {function_timeout:.2f} seconds"
            return bad_gateway(detail + tail)
        if ran.outcome is None or not ran.outcome.get("ok"):
            outcome = ran.outcome or {}
            error = outcome.get("errorType", "the process ended without a result")
            message = outcome.get("errorMessage", "")
            return bad_gateway(f"{name} failed: {error}: {message}" + tail)
        result = ran.outcome.get("result")
        size = len(json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode())
        if size > RESPONSE_LIMIT:
            return bad_gateway(
                f"{name}: Response payload size ({size} bytes) exceeded maximum allowed "
                f"payload size ({RESPONSE_LIMIT} bytes)"
            )
        try:
            return proxy_response(result)
        except MalformedResponse as err:
            return bad_gateway(f"{name}: Malformed Lambda proxy response: {err}")

    def _unreleased(self, aws: Aws, api_id: str, stage: dict[str, Any]) -> bool:
        """The stage serves sdeliver's "no release yet" deployment. moto keeps no snapshot
        of a deployment, so the gateway knows that one by its description."""

        deployment_id = stage.get("deploymentId")
        if not deployment_id:
            return False
        found = _read(aws, "apigateway", "get_deployment", restApiId=api_id,
                      deploymentId=deployment_id)
        return found is not None and found.get("description") == NO_RELEASE

    def _rest_api_id(self, project: Project) -> str | None:
        for api in project.aws.paginate("apigateway", "get_rest_apis", "items"):
            if api.get("name") == project.api_name:
                return str(api["id"])
        return None

    def pick_version(self, aws: Aws, function: str, qualifier: str) -> str | None:
        """The version serving this request: the alias's, or one of its weighted others."""
        if qualifier.isdigit() or qualifier == "$LATEST":
            return qualifier
        alias = _read(aws, "lambda", "get_alias", FunctionName=function, Name=qualifier)
        if alias is None:
            return None
        with self._rng_lock:
            draw = self.rng.random()
        return weighted_version(alias, draw)

    # -- the site

    def site(self, project: Project, env: str, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"Method Not Allowed", [("Content-Type", "text/plain")])
        aws, bucket = project.aws, project.site_bucket(env)
        website = _read(aws, "s3", "get_bucket_website", Bucket=bucket) or {}
        index = (website.get("IndexDocument") or {}).get("Suffix", "index.html")
        error = (website.get("ErrorDocument") or {}).get("Key", "error.html")
        key = request.path.lstrip("/")
        if key == "" or key.endswith("/"):
            key += index
        found = _read(aws, "s3", "get_object", Bucket=bucket, Key=key)
        if found is not None:
            return _object_response(200, found)
        if not key.endswith(index) and _read(aws, "s3", "head_object", Bucket=bucket,
                                             Key=f"{key}/{index}"):
            return Response(302, headers=[("Location", f"/{env}/site/{key}/")])
        page = _read(aws, "s3", "get_object", Bucket=bucket, Key=error)
        if page is not None:
            return _object_response(404, page)
        return Response(404, b"404 Not Found\n", [("Content-Type", "text/plain; charset=utf-8")])


    # -- the distribution (site.hosting cloudfront)

    def distribution(self, project: Project, env: str, method: str, url: Any,
                     headers: list[tuple[str, str]], body: bytes, source_ip: str) -> Response:
        """What the environment's CloudFront distribution answers, at /<env>/: `/api/...`
        goes to the API stage with `/api` stripped, anything else to the private bucket at
        `releases/<live release>/...` (`.../` + index.html), the live release read from the
        environment's KeyValueStore on every request — cdn.FUNCTION_CODE's rewrite, so a
        switch changes what is served in one step."""
        prefix = f"/{env}"
        path = url.path[len(prefix):]
        if path == "":  # relative links in the site need the trailing slash
            return Response(302, headers=[("Location", f"{prefix}/")])
        if path == "/api" or path.startswith("/api/"):
            request = Request(
                method=method.upper(), path="/" + unquote(path[len("/api/"):]),
                query=parse_qsl(url.query, keep_blank_values=True), headers=headers,
                body=body, source_ip=source_ip,
            )
            return self.api(project, env, request)
        if method.upper() not in ("GET", "HEAD"):  # the default behaviour allows GET, HEAD
            return Response.message(403, "Forbidden", f"{method} is not allowed on the site")
        try:
            release = cdn.live_release(project, env)
        except OperationFailed as err:  # no key value store yet: not reconciled
            return Response.message(503, "Service Unavailable", str(err))
        if release is None:
            return Response.message(503, "No release published yet",
                                    f"{env} serves no release yet (deploy or promote)")
        key = cdn.release_prefix(release) + unquote(path[1:])
        if key.endswith("/"):
            key += "index.html"
        found = _read(project.aws, "s3", "get_object", Bucket=project.site_bucket(env), Key=key)
        if found is None:
            # S3 answers CloudFront's OAC 403 for a missing key (it may not list the bucket).
            return Response.message(403, "AccessDenied", f"no object {key}")
        return _object_response(200, found)


def not_implemented(detail: str) -> Response:
    """What the local gateway answers for an integration it cannot run (AWS would)."""
    document = {"message": "Not Implemented", "sdeliver": detail}
    return Response(501, json.dumps(document).encode(), [("Content-Type", "application/json")],
                    detail=detail)


def mock_response(integration: dict[str, Any], request: Request) -> Response:
    """A MOCK integration's answer: its default integration response's status, static
    header values and template (the allowed-origin check sdeliver writes is honoured; any
    other template line starting with # is dropped, the rest is the body)."""
    answers = integration.get("integrationResponses") or {}
    chosen = next((r for r in answers.values() if not r.get("selectionPattern")), None)
    if chosen is None:
        return internal_error("the MOCK integration has no default integration response")
    headers = [("Content-Type", "application/json")]
    prefix = "method.response.header."
    for key, value in (chosen.get("responseParameters") or {}).items():
        text = str(value)
        if key.startswith(prefix) and len(text) >= 2 and text[0] == text[-1] == "'":
            headers.append((key[len(prefix):], text[1:-1]))
    template = str((chosen.get("responseTemplates") or {}).get("application/json") or "")
    origin = next((v for k, v in request.headers if k.lower() == "origin"), None)
    if origin is not None and origin in template_origins(template):
        headers.append((CORS_ORIGIN, origin))
    body = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
    return Response(int(chosen.get("statusCode") or 200), body.strip().encode(), headers)


def _lambda_target(uri: str, variables: dict[str, str]) -> tuple[str, str] | None:
    """(function name, qualifier) a Lambda integration URI invokes, stage variables put in;
    None when the URI is not a Lambda function's."""

    matched = LAMBDA_URI.match(uri)
    if matched is None:
        return None
    function = STAGE_VARIABLE.sub(lambda m: variables.get(m.group(1), ""), matched["function"])
    parts = function.split(":")
    if len(parts) < 7 or parts[5] != "function":
        return (function, "$LATEST") if ":" not in function else None
    return parts[6], parts[7] if len(parts) > 7 else "$LATEST"


def log_request(method: str, target: str, response: Response, started: float) -> None:
    """One line per request; an error answer says why (and what the handler printed last)."""
    ms = (time.monotonic() - started) * 1000
    path = urlsplit(target).path
    if response.detail:
        level = logging.WARNING if response.status >= 500 else logging.INFO
        log.log(level, "%s %s %d %.0f ms: %s", method, path, response.status, ms, response.detail)
    else:
        log.info("%s %s %d %.0f ms", method, path, response.status, ms)


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()][-TAIL_LINES:]
    return "".join(f"\n  | {line}" for line in lines)


def _read(aws: Aws, service: str, operation: str, **params: Any) -> Any:
    """One read; None when the thing is not there (moto and AWS name that differently)."""
    try:
        return aws.call(service, operation, missing=True, **params)
    except AwsError as err:
        if err.code in MISSING_CODES:
            return None
        raise


def _object_response(status: int, found: dict[str, Any]) -> Response:
    headers = [("Content-Type", str(found.get("ContentType") or "binary/octet-stream"))]
    if found.get("CacheControl"):
        headers.append(("Cache-Control", str(found["CacheControl"])))
    if found.get("ETag"):
        headers.append(("ETag", str(found["ETag"])))
    return Response(status, found["Body"].read(), headers)


class BadRequest(Exception):
    """A request whose body cannot be read as framed; answered, then the connection closed."""

    def __init__(self, response: Response, *, drain: int = 0) -> None:
        super().__init__(response.detail)
        self.response = response
        self.drain = drain  # bytes of body still coming, to read and drop after answering


def _bad_request(detail: str) -> BadRequest:
    return BadRequest(Response.message(400, "Bad Request", detail))


def _too_large(detail: str, drain: int = 0) -> BadRequest:
    return BadRequest(Response.message(413, "Request Too Long", detail), drain=drain)


def read_body(headers: Any, rfile: Any, limit: int = REQUEST_LIMIT) -> bytes:
    """The request body as its headers frame it (Content-Length or chunked), at most `limit`.

    Raises BadRequest for a framing API Gateway would refuse; a socket timeout on `rfile`
    (a body shorter than announced) is one of them.
    """
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    try:
        if encodings:
            if lengths:
                raise _bad_request("both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for e in encodings for c in e.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise BadRequest(Response.message(501, "Not Implemented",
                                                  f"Transfer-Encoding {', '.join(codings)}"))
            return _read_chunked(rfile, limit)
        if not lengths:
            return b""
        text = lengths[0].strip()
        if len({v.strip() for v in lengths}) > 1 or not (text.isascii() and text.isdigit()):
            raise _bad_request(f"bad Content-Length {', '.join(lengths)!r}")
        length = int(text)
        if length > limit:
            raise _too_large(f"a body of {length} bytes is over {limit}", drain=length)
        body = rfile.read(length)
        if len(body) < length:
            raise _bad_request(f"the body ended after {len(body)} of {length} bytes")
        return bytes(body)
    except TimeoutError:
        raise _bad_request("the body did not arrive in time (shorter than announced?)") from None
    except OSError as err:
        raise _bad_request(f"the connection failed while the body was read: {err}") from None


def _read_chunked(rfile: Any, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = rfile.readline(1026)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise _bad_request("a malformed chunk size line")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise _too_large(f"a chunked body over {limit} bytes")
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise _bad_request("a chunk shorter than its size")
        body += chunk
    while True:  # trailers, up to the empty line
        line = rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise _bad_request("the chunked body ended without its last line")
        if line in (b"\r\n", b"\n"):
            return bytes(body)


def _drain(rfile: Any, length: int) -> None:
    left = min(length, DRAIN_LIMIT)
    with contextlib.suppress(OSError, ValueError):
        while left > 0:
            data = rfile.read(min(left, 1 << 16))
            if not data:
                return
            left -= len(data)


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sdeliver-gateway"
        timeout = gateway.socket_timeout  # on the connection's socket: no read blocks forever

        def _serve(self) -> None:
            try:
                body = read_body(self.headers, self.rfile)
            except BadRequest as bad:
                started = time.monotonic()
                self.close_connection = True
                self._send(bad.response)
                log_request(self.command, self.path, bad.response, started)
                _drain(self.rfile, bad.drain)
                return
            response = gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            self._send(response)

        def _send(self, response: Response) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
