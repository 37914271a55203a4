"""Where moto differs from AWS, made to behave as AWS does: applied by the embedded emulator
(local/emulator.py) and by the tests' in-process moto, never by product code, which is
written for AWS alone.

Each function patches moto's classes once (idempotent) and names the gap it closes.
"""

from __future__ import annotations

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
