"""The API definition sdeliver imports: the user's OpenAPI file (or a proxy-everything
default), with every operation wired to the function alias its stage selects.

A user's file needs no account id, region or function ARN: each operation without its own
`x-amazon-apigateway-integration` gets an AWS_PROXY integration whose URI names the
function qualified by `${stageVariables.alias}`, so one definition serves every stage.

Swagger 2.0 is converted to OpenAPI 3 here: AWS imports both, but moto only OpenAPI 3, and
one format downstream keeps the digest (the `sdeliver:definition` tag) comparable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .yamlsafe import YamlProblem
from .yamlsafe import load as load_yaml

if TYPE_CHECKING:
    from .project import Project

# The AWS-documented key for API Gateway's catch-all method. moto 5 files it under the
# method name "X-AMAZON-APIGATEWAY-ANY-METHOD"; no other key means ANY on AWS, so the
# document keeps this one and resources/api.py renames moto's misfiled method after import.
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", ANY_METHOD)
MAX_DEFINITION_BYTES = 5 * 1024 * 1024

# Parameter keys that describe the value, which OpenAPI 3 moves under `schema`.
SCHEMA_KEYS = (
    "type", "format", "items", "default", "enum", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "multipleOf",
)


@dataclass(frozen=True)
class Definition:
    document: dict[str, Any]  # OpenAPI 3
    body: bytes  # canonical JSON: what is imported and digested
    sha256: str


def build_definition(project: Project) -> Definition:
    source = project.config.api.openapi
    if source is None:
        document = default_document()
    else:
        document = to_openapi3(load_document(project, source), source)
    document = wire(project, document)
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return Definition(document, body, hashlib.sha256(body).hexdigest())


def integration_uri(project: Project) -> str:
    partition, region = project.aws.partition, project.region
    function = project.arn("lambda", f"function:{project.function_name}")
    return (
        f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/"
        f"{function}:${{stageVariables.alias}}/invocations"
    )


def default_document() -> dict[str, Any]:
    """Every method of every path goes to the function."""
    proxy = {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.1",
        "info": {"version": "1.0"},
        "paths": {
            "/": {ANY_METHOD: {"responses": {}}},
            "/{proxy+}": {ANY_METHOD: {"parameters": [proxy], "responses": {}}},
        },
    }


# -- reading ------------------------------------------------------------------------------


def _fail(source: str, problem: str) -> ConfigError:
    return ConfigError(f"api.openapi: {source}: {problem}")


def load_document(project: Project, source: str) -> dict[str, Any]:
    path = project.config.resolve(source)
    try:
        if path.stat().st_size > MAX_DEFINITION_BYTES:
            raise _fail(source, "is too large for an API definition")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise _fail(source, "no such file") from None
    except IsADirectoryError:
        raise _fail(source, "is a directory, not an OpenAPI file") from None
    except UnicodeDecodeError:
        raise _fail(source, "is not UTF-8 text") from None
    except OSError as err:
        raise _fail(source, f"cannot be read: {err.strerror or err}") from None
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else load_yaml(text)
    except json.JSONDecodeError as err:
        raise _fail(source, f"malformed JSON at line {err.lineno}: {err.msg}") from None
    except RecursionError:
        raise _fail(source, "the document nests too deeply") from None
    except YamlProblem as err:
        where = f"line {err.line}: " if err.line else ""
        raise _fail(source, f"{where}{err.message}") from None
    if not isinstance(data, dict):
        raise _fail(source, "is not an OpenAPI 3 or Swagger 2.0 document")
    version = str(data.get("openapi", ""))
    if not (version.startswith("3.") or str(data.get("swagger", "")) == "2.0"):
        raise _fail(source, "is not an OpenAPI 3 or Swagger 2.0 document (no openapi: 3.x "
                            "or swagger: '2.0' key)")
    if not isinstance(data.get("paths"), dict) or not data["paths"]:
        raise _fail(source, "declares no paths")
    return data


# -- Swagger 2.0 -> OpenAPI 3 -------------------------------------------------------------


def to_openapi3(doc: dict[str, Any], source: str) -> dict[str, Any]:
    if "swagger" not in doc:
        return doc
    doc = _rewrite_refs(doc)
    produces = doc.get("produces") or ["application/json"]
    consumes = doc.get("consumes") or ["application/json"]
    shared_params = doc.get("parameters") or {}
    shared_responses = doc.get("responses") or {}

    def resolve(item: Any, shared: dict[str, Any], prefix: str) -> Any:
        # Shared parameters and responses are inlined: a body parameter has no OpenAPI 3
        # counterpart under components/parameters.
        if isinstance(item, dict) and str(item.get("$ref", "")).startswith(prefix):
            name = item["$ref"][len(prefix):]
            if name not in shared:
                raise _fail(source, f"{item['$ref']} is not defined")
            return shared[name]
        return item

    paths: dict[str, Any] = {}
    for route, item in doc["paths"].items():
        if not isinstance(item, dict):
            raise _fail(source, f"paths.{route} is not a mapping")
        common = [resolve(p, shared_params, "#/parameters/") for p in item.get("parameters", [])]
        converted: dict[str, Any] = {}
        for key, op in item.items():
            if key not in OPERATIONS:
                continue
            if not isinstance(op, dict):
                raise _fail(source, f"paths.{route}.{key} is not a mapping")
            params = [resolve(p, shared_params, "#/parameters/") for p in op.get("parameters", [])]
            responses = {
                code: resolve(r, shared_responses, "#/responses/")
                for code, r in (op.get("responses") or {}).items()
            }
            converted[key] = _operation(
                op, common + params, responses,
                op.get("consumes") or consumes, op.get("produces") or produces,
            )
        paths[route] = converted

    result: dict[str, Any] = {
        key: value for key, value in doc.items()
        if key.startswith("x-") or key in ("info", "tags", "externalDocs", "security")
    }
    result["openapi"] = "3.0.1"
    result["paths"] = paths
    if doc.get("basePath") and doc["basePath"] != "/":
        result["servers"] = [{"url": doc["basePath"]}]
    components: dict[str, Any] = {}
    if doc.get("definitions"):
        components["schemas"] = doc["definitions"]
    if doc.get("securityDefinitions"):
        components["securitySchemes"] = {
            name: _security_scheme(scheme) for name, scheme in doc["securityDefinitions"].items()
        }
    if components:
        result["components"] = components
    return result


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _rewrite_refs(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            out["$ref"] = "#/components/schemas/" + ref[len("#/definitions/"):]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _schema(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("type") == "file":
        return {"type": "string", "format": "binary"}
    return value


def _operation(
    op: dict[str, Any],
    params: list[Any],
    responses: dict[str, Any],
    consumes: list[str],
    produces: list[str],
) -> dict[str, Any]:
    out = {k: v for k, v in op.items() if k not in ("parameters", "responses", "consumes",
                                                     "produces", "schemes")}
    # An operation's parameter overrides a path-level one of the same name and location.
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for param in params:
        merged[(str(param.get("name")), str(param.get("in")))] = param
    plain, form = [], {}
    for param in merged.values():
        where = param.get("in")
        if where == "body":
            content = {mt: {"schema": _schema(param.get("schema", {}))} for mt in consumes}
            out["requestBody"] = {"content": content, "required": bool(param.get("required"))}
            if param.get("description"):
                out["requestBody"]["description"] = param["description"]
        elif where == "formData":
            form[param["name"]] = param
        else:
            converted = {k: v for k, v in param.items()
                         if k not in SCHEMA_KEYS and k != "collectionFormat"}
            converted["schema"] = _schema({k: param[k] for k in SCHEMA_KEYS if k in param})
            plain.append(converted)
    if form:
        media = next((mt for mt in consumes if mt.startswith("multipart/")),
                     "application/x-www-form-urlencoded")
        schema = {
            "type": "object",
            "properties": {
                name: _schema({k: p[k] for k in SCHEMA_KEYS if k in p}) for name, p in form.items()
            },
        }
        required = [name for name, p in form.items() if p.get("required")]
        if required:
            schema["required"] = required
        out["requestBody"] = {"content": {media: {"schema": schema}}}
    if plain:
        out["parameters"] = plain
    out["responses"] = {
        str(code): _response(response, produces) for code, response in responses.items()
    }
    return out


def _response(response: dict[str, Any], produces: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in response.items() if k not in ("schema", "headers", "examples")}
    out.setdefault("description", "")
    if "schema" in response:
        out["content"] = {mt: {"schema": _schema(response["schema"])} for mt in produces}
    if response.get("headers"):
        out["headers"] = {
            name: {
                **({"description": h["description"]} if "description" in h else {}),
                "schema": {k: h[k] for k in SCHEMA_KEYS if k in h},
            }
            for name, h in response["headers"].items()
        }
    return out


def _security_scheme(scheme: dict[str, Any]) -> dict[str, Any]:
    kind = scheme.get("type")
    if kind == "basic":
        return {"type": "http", "scheme": "basic"}
    if kind == "oauth2":
        flow_names = {"implicit": "implicit", "password": "password",
                      "application": "clientCredentials", "accessCode": "authorizationCode"}
        flow: dict[str, Any] = {
            k: scheme[k] for k in ("authorizationUrl", "tokenUrl") if k in scheme
        }
        flow["scopes"] = scheme.get("scopes", {})
        name = flow_names.get(scheme.get("flow", ""), "implicit")
        return {"type": "oauth2", "flows": {name: flow}}
    return scheme  # apiKey, with its x-amazon-apigateway-authorizer, is the same in both


# -- wiring -------------------------------------------------------------------------------


def wire(project: Project, doc: dict[str, Any]) -> dict[str, Any]:
    """Title, description and integrations; path items reduced to their operations."""
    doc = dict(doc)
    info = dict(doc.get("info") or {})
    info["title"] = project.api_name
    info.setdefault("version", "1.0")
    if not info.get("description"):
        info["description"] = project.config.api.description  # moto's import needs one
    doc["info"] = info
    integration = {
        "type": "aws_proxy",
        "httpMethod": "POST",
        "uri": integration_uri(project),
        "passthroughBehavior": "when_no_match",
    }
    source = project.config.api.openapi or "(default)"
    paths: dict[str, Any] = {}
    for route, item in doc["paths"].items():
        if not isinstance(item, dict):
            raise _fail(source, f"paths.{route} is not a mapping")
        common = item.get("parameters") or []
        ops: dict[str, Any] = {}
        for key, op in item.items():
            if key not in OPERATIONS:
                # moto imports every key of a path item as a method; AWS ignores the
                # non-operation ones (summary, servers) for REST APIs anyway.
                continue
            if not isinstance(op, dict):
                raise _fail(source, f"paths.{route}.{key} is not a mapping")
            op = dict(op)
            if common:
                own = {(p.get("name"), p.get("in")) for p in op.get("parameters", [])}
                op["parameters"] = [
                    p for p in common if (p.get("name"), p.get("in")) not in own
                ] + list(op.get("parameters", []))
            op.setdefault("responses", {})
            op.setdefault(INTEGRATION, dict(integration))
            ops[key] = op
        if not ops:
            raise _fail(source, f"paths.{route} declares no operation")
        paths[route] = ops
    doc["paths"] = paths
    return doc
