"""An HTTP proxy on loopback, in front of the moto server, that fails requests on purpose.

A chosen fraction of requests gets a 500, a 503 or a throttling answer in the wire format
of the service asked (so botocore parses it as AWS would send it). Half of the failures
happen before the request is forwarded (the call had no effect); the other half *after*
it was forwarded and answered (the call took effect, but its response is lost) — the case
that makes a retry see "already exists" or "412 Precondition Failed".

Deterministic: the same seed and the same sequence of requests give the same faults.
Bounded: at most `max_faults` faults, and never more than `max_in_a_row` in a row for one
operation, so the client's retries always end. `faults=` targets chosen operations
instead of a random fraction: {"CreateRestApi": "after"} loses the first response of every
CreateRestApi. The operation is known from the X-Sdeliver-Operation header that the
tests' botocore hook adds (see `name_operations`); without it, from the method and path.

    with FaultProxy(moto_url, rate=0.3, seed=7) as proxy:
        ... point SDELIVER_ENDPOINT_URL at proxy.url ...
    proxy.injected  # [(operation, kind, "before" | "after"), ...]
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

OPERATION_HEADER = "X-Sdeliver-Operation"
KINDS = ("500", "503", "throttle")
# Hop-by-hop headers are the proxy's own business, never forwarded.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate"}


@dataclass
class Fault:
    operation: str
    kind: str  # 500 | 503 | throttle | AccessDenied
    when: str  # before | after


@dataclass
class FaultProxy:
    upstream: str
    rate: float = 0.0
    seed: int = 0
    after_share: float = 0.5  # of the faults, the share injected after forwarding
    faults: dict[str, str] = field(default_factory=dict)  # operation -> before | after | denied
    max_faults: int = 1000
    max_in_a_row: int = 3
    injected: list[Fault] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._in_a_row: Counter[str] = Counter()
        self._targeted: Counter[str] = Counter()
        target = urlsplit(self.upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self._server, self._thread = serve(self._handle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- deciding ------------------------------------------------------------------------

    def _target(self, operation: str, path: str) -> str | None:
        """The targeted fault mode for this request: keys are "Operation" or "Operation path-part"."""
        for key, mode in self.faults.items():
            name, _, part = key.partition(" ")
            if name == operation and part in path:
                return mode
        return None

    def _decide(self, operation: str, path: str) -> Fault | None:
        """The fault for this request, if any.

        Each decision depends only on the seed, the operation and how many requests of it
        came before, never on how concurrent requests of other operations interleave: the
        same run gets the same faults.
        """
        with self._lock:
            self.requests += 1
            self._seen[operation] += 1
            mode = self._target(operation, path)
            if mode is not None:
                # Every other request: each call's first attempt fails, its retry passes.
                self._targeted[operation] += 1
                if self._targeted[operation] % 2 == 1 or mode == "denied":
                    fault = Fault(operation, "AccessDenied", "before") if mode == "denied" else (
                        Fault(operation, "503", mode))
                    self.injected.append(fault)
                    return fault
                return None
            if self.faults:
                return None
            dice = random.Random(f"{self.seed}:{operation}:{self._seen[operation]}")  # noqa: S311
            roll, kind, when = dice.random(), dice.choice(KINDS), dice.random()
            if (
                roll >= self.rate
                or len(self.injected) >= self.max_faults
                or self._in_a_row[operation] >= self.max_in_a_row
            ):
                self._in_a_row[operation] = 0
                return None
            self._in_a_row[operation] += 1
            fault = Fault(operation, kind, "after" if when < self.after_share else "before")
            self.injected.append(fault)
            return fault

    # -- serving -------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = _read_body(request)
        service = _service(request.headers.get("Authorization", ""))
        operation = request.headers.get(OPERATION_HEADER) or f"{request.command} {request.path.split('?')[0]}"
        fault = self._decide(operation, request.path)
        if fault is None or fault.when == "after":
            status, headers, answer = self._forward(request, body)
            if fault is None:
                self._reply(request, status, headers, answer)
                return
        self._reply(request, *_error(fault.kind, service))

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() != OPERATION_HEADER.lower()}
        return forward(self._host, self._port, request.command, request.path, body, headers)

    def _reply(self, request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        reply(request, status, headers, body)


# -- what every loopback proxy of the tests does (this one and tests/localstack_stub.py) ----


def serve(handle: Callable[[BaseHTTPRequestHandler], None]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A threaded HTTP/1.1 server on a free loopback port passing every request to
    `handle`, and the thread to run it in (not started)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body apart: no 40 ms delayed ACK

        def do_request(self) -> None:
            handle(self)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_request

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server, threading.Thread(target=server.serve_forever, daemon=True)


def forward(host: str, port: int, method: str, path: str, body: bytes,
            headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The request passed on upstream: its answer's status, headers and body."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP}
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        answer = response.read()
        kept = [(k, v) for k, v in response.getheaders()
                if k.lower() not in HOP and k.lower() != "content-length"]
        return response.status, kept, answer
    finally:
        conn.close()


def reply(request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers:
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                request.rfile.readline()
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _service(authorization: str) -> str:
    """The service a SigV4 request is for: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    for part in authorization.replace(",", " ").split():
        if part.startswith("Credential="):
            scope = part.split("=", 1)[1].split("/")
            if len(scope) >= 4:
                return scope[3]
    return ""


JSON_SERVICES = {"codepipeline", "logs", "codebuild", "secretsmanager", "ssm"}


def _error(kind: str, service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error answer as `service` sends it (rest-json, S3's XML or the query XML)."""
    status, code, message = {
        "500": (500, "InternalError", "We encountered an internal error. Please try again."),
        "503": (503, "ServiceUnavailable", "Service is unavailable. Please try again."),
        "throttle": (400, "Throttling", "Rate exceeded"),
        "AccessDenied": (403, "AccessDenied", "User is not authorized to perform this action"),
    }[kind]
    if service in ("lambda", "apigateway"):
        if kind == "throttle":
            status, code = 429, "TooManyRequestsException"
        if kind == "AccessDenied":
            code = "AccessDeniedException"
        body = json.dumps({"message": message, "Type": "User"}).encode()
        return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body
    if service in JSON_SERVICES:  # the awsJson protocols: the code travels in __type
        if kind == "throttle":
            code = "ThrottlingException"
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", "application/x-amz-json-1.1")], body
    if service == "s3":
        if kind == "throttle":
            status, code, message = 503, "SlowDown", "Please reduce your request rate."
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>"
        return status, [("Content-Type", "application/xml")], xml.encode()
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
        "</Error><RequestId>fault</RequestId></ErrorResponse>"
    )
    return status, [("Content-Type", "text/xml")], xml.encode()


def name_operations(client: Any) -> None:
    """Make a botocore client name each request's operation for the proxy (a header)."""

    def add(request: Any, event_name: str, **_: Any) -> None:
        request.headers[OPERATION_HEADER] = event_name.rsplit(".", 1)[-1]

    client.meta.events.register("before-send.*.*", add, unique_id="sdeliver-faultproxy-op")


@contextmanager
def running(upstream: str, **options: Any) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, **options) as proxy:
        yield proxy
