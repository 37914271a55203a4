"""The KeyValueStore data plane (the live release of a CloudFront-hosted site) is signed
with SigV4A, which botocore does only with awscrt: a dependency of sdeliver, so that a
switch works out of the box. Against a loopback server that records what reaches it."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from typing import ClassVar

import botocore.auth
import botocore.regions
import pytest
from sdeliver.aws import Aws
from sdeliver.errors import OperationFailed
from sdeliver.project import Project
from sdeliver.resources import cdn

from tests.conftest import loopback

ARN = "arn:aws:cloudfront::123456789012:key-value-store/0b0e1f7c-7b8a-4d3e-9f00-000000000001"


class _Kvs(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        _Kvs.seen.append({"method": self.command, "path": self.path, **dict(self.headers)})
        body = json.dumps({"Key": "release", "Value": "r7", "ItemCount": 1,
                           "TotalSizeInBytes": 9}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def kvs_server() -> Iterator[str]:
    _Kvs.seen = []
    with loopback(_Kvs) as url:
        yield url


def without_awscrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore as it is without awscrt: no CRT, and so no SigV4A signer."""
    monkeypatch.setattr(botocore.regions, "HAS_CRT", False)
    monkeypatch.delitem(botocore.auth.AUTH_TYPE_MAPS, "v4a", raising=False)


def test_awscrt_is_installed_with_sdeliver() -> None:
    from importlib import metadata

    requires = " ".join(metadata.requires("sdeliver") or [])
    assert "boto3[crt]" in requires
    assert botocore.regions.HAS_CRT
    cdn.check_crt(Project(config=None, aws=Aws(region="eu-west-1")))  # type: ignore[arg-type]


def test_a_key_value_store_read_is_signed_with_sigv4a_and_reaches_the_endpoint(
    kvs_server: str,
) -> None:
    aws = Aws(region="eu-west-1", endpoint_url=kvs_server)

    found = aws.call(cdn.KVS, "get_key", resource="live release of test", KvsARN=ARN,
                     Key=cdn.RELEASE_KEY)

    assert found["Value"] == "r7"
    [request] = _Kvs.seen
    assert request["path"].endswith("/keys/release")
    assert request["Authorization"].startswith("AWS4-ECDSA-P256-SHA256 ")
    assert "/cloudfront-keyvaluestore/aws4_request" in request["Authorization"]
    assert request["X-Amz-Region-Set"] == "*"  # a global service: any region may verify it


def test_without_awscrt_the_error_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_awscrt(monkeypatch)

    with pytest.raises(OperationFailed) as raised:
        cdn.check_crt(Project(config=None, aws=Aws(region="eu-west-1")))  # type: ignore[arg-type]

    assert "\n" not in raised.value.message
    assert "awscrt" in raised.value.message
    assert "boto3[crt]" in (raised.value.hint or "")


def test_without_awscrt_a_release_command_stops_before_any_key_value_store_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_awscrt(monkeypatch)
    project = Project(config=None, aws=Aws(region="eu-west-1"))  # type: ignore[arg-type]

    for read_or_switch in (lambda: cdn.live_release(project, "test"),
                           lambda: cdn.switch_release(project, "test", "r1")):
        with pytest.raises(OperationFailed, match="signs only with awscrt"):
            read_or_switch()
    assert project.aws.stats.reads == project.aws.stats.writes == 0
