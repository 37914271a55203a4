"""A LocalStack lookalike on loopback: a threaded HTTP proxy in front of the moto server that
answers, for the cases sdeliver meets, as LocalStack community (4.x, no Docker) does.

- `GET /_localstack/health` answers LocalStack's health document (how sdeliver tells it);
- CodePipeline and CodeBuild are not in the community edition: 501 InternalFailure, "The API
  for service ... is either not included in your current license plan or has not yet been
  emulated by LocalStack";
- DeleteObject with `If-Match` answers 501 NotImplemented (no conditional deletes);
- a REST API's tags added after creation (TagResource) show in GetTags, never in
  GetRestApi(s), which keep the tags the API was created with;
- a request for `<bucket>.s3-website.localhost.localstack.cloud` is the bucket's website
  (index.html for a directory).

Everything else goes to moto unchanged.

    with LocalStackStub(moto_url) as stub:
        ... point SDELIVER_ENDPOINT_URL at stub.url ...
    stub.refused  # ["codepipeline GetPipeline", ...]
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.reliability.faultproxy import _read_body, _service, forward, reply, serve

VERSION = "4.14.0"
NOT_IN_PLAN = (
    "The API for service {service} is either not included in your current license plan or "
    "has not yet been emulated by LocalStack. Please refer to "
    "https://docs.localstack.cloud/references/coverage for more details."
)
PRO_SERVICES = ("codepipeline", "codebuild")
WEBSITE = re.compile(r"^(?P<bucket>.+)\.s3-website\.localhost\.localstack\.cloud(:\d+)?$")
REST_API_TAGS = re.compile(r"^/tags/(?P<arn>arn:[^/?]+:apigateway:[^/?]*::/restapis/(?P<id>[^/?]+))$")


class LocalStackStub:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self._lock = threading.Lock()
        self.api_tags: dict[str, dict[str, str]] = {}  # REST API id -> tags added after creation
        self.refused: list[str] = []  # "service Operation" answered 501
        self._server, self._thread = serve(self._handle)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalStackStub:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answering -----------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = _read_body(request)
        path = request.path.split("?")[0]
        service = _service(request.headers.get("Authorization", ""))
        website = WEBSITE.match(request.headers.get("Host", ""))
        if path == "/_localstack/health":
            self._json(request, 200, {
                "edition": "community", "version": VERSION,
                "services": {"s3": "running", "lambda": "running", "apigateway": "running",
                             "iam": "available", "sts": "available", "route53": "available"},
            })
        elif website:
            self._website(request, website["bucket"], path)
        elif service in PRO_SERVICES:
            operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
            with self._lock:
                self.refused.append(f"{service} {operation}")
            self._json(request, 501, {"__type": "InternalFailure",
                                      "message": NOT_IN_PLAN.format(service=service)},
                       content_type="application/x-amz-json-1.1")
        elif service == "s3" and request.command == "DELETE" and request.headers.get("If-Match"):
            with self._lock:
                self.refused.append("s3 DeleteObject If-Match")
            xml = ("<Error><Code>NotImplemented</Code><Message>A header you provided implies "
                   "functionality that is not implemented</Message><Header>If-Match</Header>"
                   "<RequestId>stub</RequestId></Error>")
            self._reply(request, 501, [("Content-Type", "application/xml")], xml.encode())
        elif service == "apigateway" and REST_API_TAGS.match(unquote(path)):
            self._rest_api_tags(request, REST_API_TAGS.match(unquote(path)), body)  # type: ignore[arg-type]
        else:
            self._reply(request, *self._forward(request.command, request.path, body,
                                                dict(request.headers.items())))

    def _rest_api_tags(self, request: BaseHTTPRequestHandler, match: re.Match[str],
                       body: bytes) -> None:
        """TagResource / GetTags of a REST API, which moto cannot do: kept here, and never
        shown by GetRestApi(s), as on LocalStack."""
        api_id = match["id"]
        status, _, answer = self._forward("GET", f"/restapis/{api_id}", b"",
                                          {"Authorization": request.headers.get("Authorization", "")})
        if status != 200:
            self._reply(request, status, [("Content-Type", "application/json")], answer)
            return
        with self._lock:
            added = self.api_tags.setdefault(api_id, {})
            if request.command == "PUT":
                added.update(json.loads(body or b"{}").get("tags") or {})
                self._reply(request, 204, [], b"")
                return
            tags = {**(json.loads(answer).get("tags") or {}), **added}
        self._json(request, 200, {"tags": tags})

    def _website(self, request: BaseHTTPRequestHandler, bucket: str, path: str) -> None:
        key = path.lstrip("/")
        if not key or key.endswith("/"):
            key += "index.html"
        status, headers, answer = self._forward("GET", f"/{bucket}/{key}", b"", {})
        if status != 200:
            self._reply(request, 404, [("Content-Type", "text/html")], b"<h1>404 Not Found</h1>")
            return
        kept = [(k, v) for k, v in headers if k.lower() in ("content-type", "etag")]
        self._reply(request, 200, kept, answer)

    # -- plumbing ------------------------------------------------------------------------

    def _forward(self, method: str, path: str, body: bytes,
                 headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return forward(self._host, self._port, method, path, body, headers)

    def _json(self, request: BaseHTTPRequestHandler, status: int, document: Any,
              content_type: str = "application/json") -> None:
        self._reply(request, status, [("Content-Type", content_type)],
                    json.dumps(document).encode())

    def _reply(self, request: BaseHTTPRequestHandler, status: int,
               headers: list[tuple[str, str]], body: bytes) -> None:
        reply(request, status, headers, body)
