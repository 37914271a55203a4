"""The local gateway: the data plane the emulator lacks.

moto stores API Gateway definitions and Lambda versions but routes no request and runs no
code. The gateway does both, reading everything from the emulator on every request (so a
deploy, a promotion or a rollback changes what it serves at once):

  /<env>/api/<path>   the REST API's stage <env> → its `alias` stage variable → the version
                      the alias points to (RoutingConfig weights honoured) → that version's
                      Python handler, run in a subprocess with a REST proxy event
  /<env>/site/<path>  the environment's site bucket, with S3 website rules

Answers follow API Gateway's: a handler that raises or answers malformed → 502
`Internal server error`; a timeout → 504 `Endpoint request timed out`; a path or method
the API does not declare → 403 `Missing Authentication Token` (what a REST API answers).
An environment with no stage yet is not API Gateway's to answer: 404 `Not Found`.
A configuration fault (no alias, no function, a non-Python runtime) → 500, logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import AwsError
from .emulator import HOST
from .proxy import (
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
from .runner import CodeCache, run_handler

if TYPE_CHECKING:
    from ..aws import Aws
    from ..config import Config
    from ..project import Project

log = logging.getLogger("sdeliver.gateway")

# API Gateway gives up on an integration after 29 seconds, whatever the function's timeout.
INTEGRATION_TIMEOUT = 29
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
        python: str = sys.executable,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.port = port
        self.rng = rng or random.Random()  # noqa: S311 - traffic weights, not secrets
        self.python = python
        self._rng_lock = threading.Lock()
        self._aws: dict[str, Aws] = {}
        self._code = CodeCache()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        url = urlsplit(target)
        parts = url.path.split("/", 3)  # "", env, kind, rest
        if url.path in ("", "/"):
            return self._index()
        if len(parts) < 3 or parts[2] not in ("api", "site"):
            return Response.message(404, "Not Found")
        env, kind = parts[1], parts[2]
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
            project = self._project()
            if project is None:
                return Response.message(404, "no sdeliver.yaml: the local gateway has no app")
            if env not in project.config.environments:
                return Response.message(404, "Not Found")
            if kind == "api":
                return self.api(project, env, request)
            return self.site(project, env, request)
        except Exception:  # one request's fault never stops the gateway
            log.exception("%s %s failed", method, target)
            return internal_error()

    def _index(self) -> Response:
        config = self.config()
        envs = list(config.environments) if config is not None else []
        document = {
            "gateway": "sdeliver local",
            "endpoint": self.endpoint,
            "app": config.app if config is not None else None,
            "environments": {
                env: {"api": f"{self.url}/{env}/api/", "site": f"{self.url}/{env}/site/"}
                for env in envs
            },
        }
        return Response(200, json.dumps(document).encode(), [("Content-Type", "application/json")])

    def _project(self) -> Project | None:
        from ..aws import Aws
        from ..project import Project

        config = self.config()
        if config is None:
            return None
        if config.region not in self._aws:
            self._aws[config.region] = Aws(region=config.region, endpoint_url=self.endpoint)
        return Project(config=config, aws=self._aws[config.region])

    # -- the API

    def api(self, project: Project, env: str, request: Request) -> Response:
        aws = project.aws
        api_id = self._rest_api_id(project)
        if api_id is None:
            return Response.message(404, "Not Found")
        stage = _read(aws, "apigateway", "get_stage", restApiId=api_id, stageName=env)
        if stage is None:
            return Response.message(404, "Not Found")
        routes = {
            r["path"]: {m.upper() for m in r.get("resourceMethods") or {}}
            for r in aws.paginate("apigateway", "get_resources", "items", restApiId=api_id)
        }
        route = match_route(routes, request.path, request.method)
        if route is None:
            return forbidden()
        variables = dict(stage.get("variables") or {})
        qualifier = variables.get("alias")
        if not qualifier:
            log.error("stage %s of API %s has no 'alias' stage variable", env, project.api_name)
            return internal_error()
        function = project.function_name
        version = self.pick_version(aws, function, qualifier)
        if version is None:
            log.error("function %s has no alias or version %s", function, qualifier)
            return internal_error()
        found = _read(aws, "lambda", "get_function", FunctionName=function, Qualifier=version)
        if found is None:
            log.error("function %s has no version %s", function, version)
            return internal_error()
        configuration = found["Configuration"]
        runtime = str(configuration.get("Runtime", ""))
        if not runtime.startswith("python3"):
            log.error(
                "%s:%s has runtime %s: the local gateway runs only python3.x functions",
                function, version, runtime or "(none)",
            )
            return bad_gateway()
        code_dir = self._code.get(configuration, found.get("Code") or {})
        request_id = str(uuid.uuid4())
        event = proxy_event(
            request, env=env, resource=route[0], path_params=route[1],
            stage_variables=variables, api_id=api_id, request_id=request_id,
        )
        timeout = min(float(configuration.get("Timeout", 3)), INTEGRATION_TIMEOUT)
        ran = run_handler(
            code_dir, configuration, event, timeout=timeout, endpoint=self.endpoint,
            request_id=request_id, python=self.python,
        )
        for line in ran.log.splitlines():
            log.info("%s:%s %s", function, version, line)
        if ran.timed_out:
            log.error("%s:%s timed out after %ss", function, version, timeout)
            return Response.message(504, "Endpoint request timed out")
        if ran.outcome is None or not ran.outcome.get("ok"):
            outcome = ran.outcome or {}
            log.error(
                "%s:%s failed: %s: %s", function, version,
                outcome.get("errorType", "the process ended without a result"),
                outcome.get("errorMessage", ""),
            )
            return bad_gateway()
        response = proxy_response(ran.outcome.get("result"))
        if response is None:
            log.error("%s:%s returned a malformed proxy response", function, version)
            return bad_gateway()
        return response

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


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sdeliver-gateway"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
