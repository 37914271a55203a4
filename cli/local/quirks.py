"""Where moto differs from AWS, made to behave as AWS does: applied by the embedded emulator
(local/emulator.py) and by the tests' in-process moto, never by product code, which is
written for AWS alone.

Each function patches moto's classes once (idempotent) and names the gap it closes.
"""

from __future__ import annotations

import json
from typing import Any

from ..openapi import ANY_METHOD

INTEGRATION = "x-amazon-apigateway-integration"


def file_any_methods() -> None:
    """Import `x-amazon-apigateway-any-method` as the method ANY, and an integration's type
    in capitals, as AWS does.

    moto's PutRestApi upper-cases every key of a path item into a method name, so the
    catch-all method becomes a method called X-AMAZON-APIGATEWAY-ANY-METHOD that no
    request matches; and it keeps `type: mock` as written where AWS answers MOCK. The
    document is handed to moto with both put right."""
    try:
        from moto.apigateway.models import APIGatewayBackend
    except ImportError:  # pragma: no cover - moto is installed with sdeliver[local]
        return
    put = APIGatewayBackend.put_rest_api
    if getattr(put, "_sdeliver", False):
        return

    def put_rest_api(
        self: Any, function_id: str, api_doc: dict[str, Any], fail_on_warnings: bool,
        mode: str = "merge",
    ) -> Any:
        paths = api_doc.get("paths")
        if isinstance(paths, dict):
            api_doc = {**api_doc, "paths": {
                path: ({("ANY" if str(key).lower() == ANY_METHOD else key): _typed(value)
                        for key, value in item.items()} if isinstance(item, dict) else item)
                for path, item in paths.items()
            }}
        return put(self, function_id, api_doc, fail_on_warnings, mode)

    put_rest_api._sdeliver = True  # type: ignore[attr-defined]
    APIGatewayBackend.put_rest_api = put_rest_api  # type: ignore[method-assign]


def _typed(method: Any) -> Any:
    integration = method.get(INTEGRATION) if isinstance(method, dict) else None
    if not isinstance(integration, dict) or not isinstance(integration.get("type"), str):
        return method
    return {**method, INTEGRATION: {**integration, "type": integration["type"].upper()}}


def allow_mock_integrations() -> None:
    """Make moto import a MOCK integration without `uri` and `httpMethod`, as AWS does.

    moto's PutRestApi passes both positionally and fails (500) when a mock integration, as
    AWS documents it, has neither. Applied where moto runs in this process (the emulator,
    the in-process mock of the tests); a no-op without moto."""
    try:
        from moto.apigateway.models import APIGatewayBackend
    except ImportError:  # pragma: no cover - moto is installed with sdeliver
        return
    build = APIGatewayBackend._build_integration_args
    if getattr(build, "_sdeliver", False):
        return

    def build_args(self: Any, integration: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = build(self, integration)
        if str(args.get("integration_type") or "").lower() == "mock":
            args["uri"] = args.get("uri") or ""
            args["integration_method"] = args.get("integration_method") or "POST"
        return args

    build_args._sdeliver = True  # type: ignore[attr-defined]
    APIGatewayBackend._build_integration_args = build_args  # type: ignore[method-assign,assignment]


def _ignore_policy_conditions() -> None:
    """Make moto skip bucket-policy statements with a Condition instead of applying them.

    moto evaluates bucket policies without their conditions, so a guard such as "deny
    unless aws:SecureTransport" denies every request to the (plain HTTP, loopback)
    emulator. A statement moto cannot evaluate is left out, as if its condition did not
    hold: loopback stands in for TLS.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, "_sdeliver", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = document.get("Statement") or []
        if isinstance(statements, dict):
            statements = [statements]
        document["Statement"] = [s for s in statements if "Condition" not in s]
        if not document["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)

    get_permission._sdeliver = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
