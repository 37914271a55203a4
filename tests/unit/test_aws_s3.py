"""The S3 facade reads bodies inside the AWS layer: a stream cut short is read again, and
otherwise an AwsError with one line, never a botocore exception in release code."""

from __future__ import annotations

import io
from typing import Any

import botocore.exceptions
import pytest
from sdeliver.aws import Aws, s3
from sdeliver.errors import AwsError


class CutShort(io.BytesIO):
    def read(self, *args: Any) -> bytes:
        raise botocore.exceptions.ResponseStreamingError(error="Connection broken: IncompleteRead")


def answering(monkeypatch: pytest.MonkeyPatch, aws: Aws, bodies: list[io.BytesIO]) -> list[str]:
    asked: list[str] = []

    def call(service: str, operation: str, **params: Any) -> dict[str, Any]:
        asked.append(f"{service}.{operation}")
        return {"Body": bodies.pop(0), "ETag": '"e"', "Metadata": {"m": "1"}}

    monkeypatch.setattr(aws, "call", call)
    return asked


def test_a_body_cut_short_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    aws = Aws(region="us-east-1")
    asked = answering(monkeypatch, aws, [CutShort(), io.BytesIO(b"whole")])
    found = s3.get(aws, "b", "k")
    assert found == s3.S3Object(b"whole", '"e"', {"m": "1"})
    assert asked == ["s3.get_object", "s3.get_object"]


def test_a_body_cut_short_every_time_is_an_aws_error(monkeypatch: pytest.MonkeyPatch) -> None:
    aws = Aws(region="us-east-1")
    asked = answering(monkeypatch, aws, [CutShort() for _ in range(s3.STREAM_ATTEMPTS)])
    with pytest.raises(AwsError) as raised:
        s3.get(aws, "b", "k")
    assert "s3://b/k" in raised.value.message
    assert len(asked) == s3.STREAM_ATTEMPTS


def test_a_missing_key_is_none_or_the_error_that_says_so(mocked_aws: None) -> None:
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="facade-bucket")
    aws = Aws(region="us-east-1")
    assert s3.get(aws, "facade-bucket", "absent") is None
    with pytest.raises(AwsError) as raised:
        s3.read(aws, "facade-bucket", "absent")
    assert raised.value.code == "NoSuchKey"
