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
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .endpoints import local_urls
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
        refuse_foreign(project, document)
    document = wire(project, document)
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return Definition(document, body, hashlib.sha256(body).hexdigest())


NO_RELEASE_MESSAGE = "no release yet"


def no_release_definition(project: Project) -> Definition:
    """What a stage serves before its environment's first release: every route answered by
    API Gateway itself (MOCK) with 503 {"message": "no release yet"}, never the function
    (whose version 1, the source as `init` found it, no one has tested)."""
    mock = {
        "type": "mock",
        "requestTemplates": {"application/json": '{"statusCode": 503}'},
        "passthroughBehavior": "when_no_match",
        "responses": {"default": {
            "statusCode": "503",
            "responseTemplates": {
                "application/json": json.dumps({"message": NO_RELEASE_MESSAGE}),
            },
        }},
    }
    answer = {"503": {"description": NO_RELEASE_MESSAGE}}
    proxy = {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
    document = {
        "openapi": "3.0.1",
        "info": {"title": project.api_name, "version": "1.0",
                 "description": project.config.api.description},
        "paths": {
            "/": {ANY_METHOD: {"responses": answer, INTEGRATION: mock}},
            "/{proxy+}": {ANY_METHOD: {"parameters": [proxy], "responses": answer,
                                       INTEGRATION: mock}},
        },
    }
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
    return add_cors(project, doc)


# -- foreign integrations -----------------------------------------------------------------

# `arn:<partition>:apigateway:<region>:lambda:path/.../functions/<function ARN>/invocations`
LAMBDA_URI = re.compile(
    r"^arn:[^:]+:apigateway:(?P<region>[^:]*):lambda:path/[^/]+/functions/"
    r"(?P<function>.+?)/invocations$"
)
FUNCTION_ARN = re.compile(r"^arn:[^:]+:lambda:(?P<region>[^:]*):(?P<account>[^:]*):function:")
STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


def stage_variables(config: Any) -> set[str]:
    """The stage variables sdeliver sets on every stage: `alias`, and each environment's
    declared variables (when the config declares any)."""
    names = {"alias"}
    for env in config.environments.values():
        names.update(getattr(env, "variables", None) or {})
    return names


def foreign_integrations(
    document: dict[str, Any], *, region: str, account: str | None, known: set[str]
) -> list[str]:
    """`METHOD /path: why` for each operation whose own integration names another region or
    account (None: not checked), or a stage variable sdeliver does not set."""
    found = []
    for route, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for key, op in item.items():
            if key not in OPERATIONS or not isinstance(op, dict):
                continue
            integration = op.get(INTEGRATION)
            if not isinstance(integration, dict):
                continue
            reasons = _foreign(integration, region=region, account=account, known=known)
            if reasons:
                method = "ANY" if key == ANY_METHOD else key.upper()
                found.append(f"{method} {route}: {'; '.join(reasons)}")
    return found


def _foreign(
    integration: dict[str, Any], *, region: str, account: str | None, known: set[str]
) -> list[str]:
    text = json.dumps(integration)
    reasons = []
    unknown = sorted({v for v in STAGE_VARIABLE.findall(text) if v not in known})
    if unknown:
        names = ", ".join(f"${{stageVariables.{v}}}" for v in unknown)
        reasons.append(f"uses stage variables sdeliver does not set ({names})")
    uri = str(integration.get("uri") or "")
    matched = LAMBDA_URI.match(uri)
    regions = {matched["region"]} if matched else set()
    function = FUNCTION_ARN.match(matched["function"]) if matched else None
    if function:
        regions.add(function["region"])
        if account is not None and function["account"] not in ("", account):
            reasons.append(f"names account {function['account']}")
    other = sorted(r for r in regions if r and "${" not in r and r != region)
    if other:
        reasons.append(f"names region {', '.join(other)} (the app's is {region})")
    credentials = str(integration.get("credentials") or "")
    owner = credentials.split(":")[4] if credentials.count(":") >= 5 else ""
    if account is not None and owner and owner != account:
        reasons.append(f"its credentials name account {owner}")
    return reasons


def refuse_foreign(project: Project, document: dict[str, Any]) -> None:
    """Deploy refuses a definition with foreign integrations unless the config allows them."""
    if project.config.api.allow_foreign_integrations:
        return
    found = foreign_integrations(
        document, region=project.region, account=project.account,
        known=stage_variables(project.config),
    )
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(
            f"api.openapi: {project.config.api.openapi}: {found[0]}{more}",
            hint="remove the operation's own x-amazon-apigateway-integration (sdeliver wires "
            "it to this function), or set api.allow_foreign_integrations: true",
        )


# -- CORS ---------------------------------------------------------------------------------

CORS_ORIGIN = "Access-Control-Allow-Origin"


def cors_origins(project: Project) -> list[str]:
    """The origins allowed to call the API: declared, or every environment's site origin."""
    cors = project.config.api.cors
    assert cors is not None
    if cors.origins is not None:
        return list(dict.fromkeys(cors.origins))
    return sorted({site_origin(project, env) for env in project.config.environments})


def site_origin(project: Project, env: str) -> str:
    """scheme://host[:port] of the environment's site (the local gateway's, locally)."""
    url = None
    if project.aws.endpoint_url:
        found = local_urls(project, env)
        url = found[1] if found else None
    parts = urlsplit(url or project.site_url(env))
    return f"{parts.scheme}://{parts.netloc}"


def origin_template(origins: list[str]) -> str:
    """The mock's response template: it sets Access-Control-Allow-Origin to the request's
    Origin when that is one of several allowed (one origin, or '*', is a static header).
    The local gateway reads the list back from this exact shape (`template_origins`)."""
    test = " || ".join(f'$origin == "{o}"' for o in origins)
    return (
        '#set($origin = $input.params("Origin"))\n'
        f"#if({test})\n"
        f"#set($context.responseOverride.header.{CORS_ORIGIN} = $origin)\n"
        "#end\n"
    )


def template_origins(template: str) -> list[str]:
    if f"responseOverride.header.{CORS_ORIGIN}" not in template:
        return []
    return re.findall(r'\$origin == "([^"]*)"', template)


def cors_headers(project: Project) -> dict[str, str]:
    """The preflight's static headers (Allow-Origin only when one value fits every request)."""
    cors = project.config.api.cors
    assert cors is not None
    origins = cors_origins(project)
    headers = {
        "Access-Control-Allow-Methods": ",".join(cors.methods),
        "Access-Control-Allow-Headers": ",".join(cors.headers),
        "Access-Control-Max-Age": str(cors.max_age),
    }
    if "*" in origins:
        headers[CORS_ORIGIN] = "*"
    elif len(origins) == 1:
        headers[CORS_ORIGIN] = origins[0]
    else:
        headers["Vary"] = "Origin"
    return headers


def preflight_operation(project: Project) -> dict[str, Any]:
    """OPTIONS answered by API Gateway itself (a MOCK integration), never by the function."""
    headers = cors_headers(project)
    origins = cors_origins(project)
    template = "" if CORS_ORIGIN in headers else origin_template(origins)
    declared = {**headers, CORS_ORIGIN: ""}
    return {
        "summary": "CORS preflight (sdeliver)",
        "responses": {"200": {
            "description": "CORS preflight",
            "headers": {name: {"schema": {"type": "string"}} for name in declared},
        }},
        INTEGRATION: {
            "type": "mock",
            "requestTemplates": {"application/json": '{"statusCode": 200}'},
            "passthroughBehavior": "when_no_match",
            "responses": {"default": {
                "statusCode": "200",
                "responseParameters": {
                    f"method.response.header.{name}": f"'{value}'"
                    for name, value in headers.items()
                },
                "responseTemplates": {"application/json": template},
            }},
        },
    }


def gateway_responses(project: Project) -> dict[str, Any]:
    """API Gateway's own error answers (403, 429, 502, 504...) readable by the site too:
    only with one allowed origin (a gateway response cannot choose among several)."""
    origin = cors_headers(project).get(CORS_ORIGIN)
    if origin is None:
        return {}
    parameters = {f"gatewayresponse.header.{CORS_ORIGIN}": f"'{origin}'"}
    return {kind: {"responseParameters": parameters} for kind in ("DEFAULT_4XX", "DEFAULT_5XX")}


def add_cors(project: Project, doc: dict[str, Any]) -> dict[str, Any]:
    """A preflight on every path that declares no OPTIONS of its own, and gateway responses."""
    if project.config.api.cors is None:
        return doc
    preflight = preflight_operation(project)
    doc["paths"] = {
        route: ops if "options" in ops else {**ops, "options": json.loads(json.dumps(preflight))}
        for route, ops in doc["paths"].items()
    }
    responses = gateway_responses(project)
    if responses:
        doc["x-amazon-apigateway-gateway-responses"] = {
            **responses, **(doc.get("x-amazon-apigateway-gateway-responses") or {})
        }
    return doc
