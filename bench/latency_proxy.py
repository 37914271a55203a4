"""A loopback proxy that holds every AWS request a fixed time before forwarding it to the
moto server: the network round trip of real AWS, without real AWS.

On AWS each call costs tens of milliseconds of network, so what a user waits for is the
number of calls made one after another, not their total. Through this proxy a command's
wall time grows by `latency` per sequential round trip; concurrent requests are held side
by side (one thread per connection), so parallel calls cost one latency between them.

The proxy also records every request (start, end, method, path, operation) so a benchmark
can tell how many latencies a command waited (the union of the intervals in which at least
one request was held, divided by the latency) and which calls were on its path.

Run alone:  python bench/latency_proxy.py --target http://127.0.0.1:5000 [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_LATENCY = 0.100
# Not forwarded: they describe this hop, not the request (RFC 9110 §7.6.1), or are answered
# here (Expect: 100-continue is handled by http.server).
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "expect",
}


@dataclass(frozen=True)
class Request:
    started: float  # time.monotonic() when the proxy had read the whole request
    ended: float  # when it had sent the answer back
    method: str
    path: str
    operation: str  # X-Amz-Target, the query's Action, or METHOD /path
    status: int


def operation_of(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """A readable name for a request, from what the wire says (no service models)."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    parsed = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parsed.query)
    if "Action" in query:
        return query["Action"][0]
    if method == "POST" and body[:7] == b"Action=":
        return urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
    keys = sorted(k for k in urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
                  if k not in ("list-type", "prefix", "encoding-type", "max-keys"))
    return f"{method} {parsed.path}" + (f"?{'&'.join(keys)}" if keys else "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
    server: _Server

    def log_message(self, *_args: object) -> None:  # quiet
        pass

    def _relay(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            headers["Content-Length"] = str(len(body))
        started = time.monotonic()
        time.sleep(self.server.latency)  # the round trip
        target = urllib.parse.urlsplit(self.server.target)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            status = answer.status
            self.send_response_only(status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
                    continue
                self.send_header(key, value)
            length_header = answer.getheader("Content-Length")
            if self.command == "HEAD" and length_header is not None:
                self.send_header("Content-Length", length_header)
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD" and data:
                self.wfile.write(data)
            self.wfile.flush()
        finally:
            upstream.close()
        lowered = {k.lower(): v for k, v in headers.items()}
        self.server.record(Request(
            started, time.monotonic(), self.command, self.path,
            operation_of(self.command, self.path, lowered, body), status,
        ))

    def _body(self) -> bytes:
        if "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _relay


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, port: int, target: str, latency: float) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.target = target
        self.latency = latency
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


@dataclass
class LatencyProxy:
    server: _Server

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def latency(self) -> float:
        return self.server.latency

    def take(self) -> list[Request]:
        """The requests recorded since the last take, in the order they started."""
        with self.server._lock:
            found, self.server.requests = self.server.requests, []
        return sorted(found, key=lambda r: r.started)


def held_latencies(requests: list[Request], latency: float) -> float:
    """How many latencies the client waited: the union of the intervals in which at least
    one request was being held, divided by the latency (the proxy's own view of the
    sequential round trips, free of the client's and the server's CPU time)."""
    total, end = 0.0, float("-inf")
    for r in sorted(requests, key=lambda r: r.started):
        start, stop = r.started, r.started + latency
        if start >= end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / latency if latency else 0.0


def depths(requests: list[Request]) -> list[int]:
    """Each request's place on the longest chain of requests each sent after the answer to
    the one before it (1 + the deepest request answered before it was sent), in start
    order. The deepest is the command's critical path in round trips: unlike the wall time
    and the held time, it does not grow when a loaded machine is slow to send a batch of
    parallel requests."""
    ordered = sorted(requests, key=lambda r: r.started)
    found: list[int] = []
    for n, r in enumerate(ordered):
        before = [found[m] for m, q in enumerate(ordered[:n]) if q.ended <= r.started]
        found.append(1 + max(before, default=0))
    return found


def chain(requests: list[Request]) -> int:
    """The critical path in round trips (see depths)."""
    return max(depths(requests), default=0)


def waves(requests: list[Request]) -> list[list[str]]:
    """The requests by their place on the critical path (see depths): each group went out
    after the answers of the group before it, its requests side by side."""
    ordered = sorted(requests, key=lambda r: r.started)
    groups: list[list[str]] = [[] for _ in range(chain(ordered))]
    for r, depth in zip(ordered, depths(ordered), strict=True):
        groups[depth - 1].append(r.operation)
    return groups


@contextlib.contextmanager
def latency_proxy(target: str, latency: float = DEFAULT_LATENCY, port: int = 0
                  ) -> Iterator[LatencyProxy]:
    server = _Server(port, target, latency)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LatencyProxy(server)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="the moto server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY * 1000)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with latency_proxy(args.target, args.latency_ms / 1000, args.port) as proxy:
        print(f"{proxy.endpoint} -> {args.target}, {args.latency_ms:.0f} ms per request",
              flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
