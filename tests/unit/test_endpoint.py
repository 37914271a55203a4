"""An endpoint that is not AWS, or not there, fails in one line and at once (issue 13, 8)."""

from __future__ import annotations

import http.server
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdeliver.aws import CONNECT_ATTEMPTS, Aws, _fail_fast_on_connection_errors
from sdeliver.errors import AwsError

from tests.conftest import loopback

HTML_ERROR = b"""<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <p>Error code: 501</p>
    </body>
</html>
"""


class _Html(http.server.BaseHTTPRequestHandler):
    """What `python -m http.server` answers a POST: an HTML page, not an AWS response."""

    status = 501
    body = HTML_ERROR

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    with loopback(_Html) as url:
        yield url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nobody listens


def test_an_unreachable_endpoint_is_tried_a_few_times_only() -> None:
    aws = Aws(region="us-east-1", endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    sent: list[str] = []
    aws.client("sts").meta.events.register("before-send", lambda **_: sent.append("x"))
    with pytest.raises(AwsError) as raised:
        aws.call("sts", "get_caller_identity", resource="the caller")
    assert len(sent) == CONNECT_ATTEMPTS  # not botocore's 10 attempts over 24-36 s
    assert raised.value.code == "EndpointConnectionError"
    assert "\n" not in raised.value.message


def test_only_connection_errors_stop_early() -> None:
    """Throttling and 5xx answers (no caught exception) keep botocore's retries."""
    assert _fail_fast_on_connection_errors(attempts=9, caught_exception=None) is None
    assert _fail_fast_on_connection_errors(attempts=9, caught_exception=OSError()) is None


@pytest.mark.parametrize(("status", "body"), [
    (501, HTML_ERROR),  # invalid XML: botocore's ResponseParserError
    (200, b"<html><body>hello</body></html>"),  # well-formed, no result: a KeyError
])
def test_a_server_that_is_not_aws_is_one_line(html_server: str, status: int, body: bytes,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Html, "status", status)
    monkeypatch.setattr(_Html, "body", body)
    aws = Aws(region="us-east-1", endpoint_url=html_server, max_attempts=1)
    with pytest.raises(AwsError) as raised:
        aws.call("sts", "get_caller_identity", resource="the caller")
    assert raised.value.code == "NotAnAwsResponse"
    assert raised.value.message == (
        f"sts.get_caller_identity on the caller failed: {html_server} did not answer as AWS "
        "does (the response is not an AWS API response)"
    )


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1:21", "http://127.0.0.1:abc"])
def test_a_malformed_endpoint_url_is_a_usage_error(sdeliver, project_dir: Path, url: str) -> None:  # type: ignore[no-untyped-def]
    result = sdeliver("--endpoint-url", url, "status", cwd=project_dir)
    assert result.code == 2
    assert result.stderr.startswith(f"error: --endpoint-url {url!r} is not an http(s) URL\n")
    assert "internal error" not in result.output
