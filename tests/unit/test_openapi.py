"""The API definition: the user's OpenAPI (or Swagger 2) file, wired to the function alias."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdeliver.errors import ConfigError
from sdeliver.openapi import ANY_METHOD, INTEGRATION, build_definition

EXAMPLE = Path(__file__).parent.parent.parent / "config" / "sdeliver.example.yaml"
ALIAS_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:dromedary-app:${stageVariables.alias}"
    "/invocations"
)


def config_with_openapi(value: str | None) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    line = "  openapi: api/openapi.yaml"
    assert line in text
    return text.replace(line, f"  openapi: {value}" if value else "")


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (route, method): op
        for route, item in document["paths"].items()
        for method, op in item.items()
    }


def test_every_operation_of_the_sample_goes_to_the_alias_its_stage_selects(make_project):
    definition = build_definition(make_project())

    ops = operations(definition.document)
    assert set(ops) == {("/hello", "get"), ("/health", "get")}
    for op in ops.values():
        assert op[INTEGRATION] == {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": ALIAS_URI,
            "passthroughBehavior": "when_no_match",
        }


def test_the_title_is_the_api_name_and_a_description_is_always_there(make_project, project_dir):
    (project_dir / "api" / "bare.yaml").write_text(
        "openapi: 3.0.1\ninfo: {title: something else, version: '2'}\n"
        "paths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n"
    )
    definition = build_definition(make_project(config_with_openapi("api/bare.yaml")))

    assert definition.document["info"]["title"] == "dromedary"
    assert definition.document["info"]["description"] == "managed by sdeliver"


def test_body_is_canonical_json_of_the_document_and_its_digest(make_project):
    import hashlib

    definition = build_definition(make_project())

    assert json.loads(definition.body) == definition.document
    assert definition.body == json.dumps(
        definition.document, sort_keys=True, separators=(",", ":")
    ).encode()
    assert definition.sha256 == hashlib.sha256(definition.body).hexdigest()


def test_the_digest_changes_when_the_file_changes(make_project, project_dir):
    project = make_project()
    before = build_definition(project).sha256
    assert build_definition(project).sha256 == before
    path = project_dir / "api" / "openapi.yaml"
    path.write_text(path.read_text().replace("/health:", "/healthz:"))

    assert build_definition(project).sha256 != before


def test_without_openapi_every_method_of_every_path_proxies_to_the_function(make_project):
    definition = build_definition(make_project(config_with_openapi(None)))

    ops = operations(definition.document)
    assert set(ops) == {("/", ANY_METHOD), ("/{proxy+}", ANY_METHOD)}
    assert ops[("/{proxy+}", ANY_METHOD)]["parameters"] == [
        {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert all(op[INTEGRATION]["uri"] == ALIAS_URI for op in ops.values())


def test_an_operation_with_its_own_integration_keeps_it(make_project, project_dir):
    (project_dir / "api" / "mock.yaml").write_text(
        "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n"
        "  /ping:\n    get:\n      responses: {'200': {description: ok}}\n"
        "      x-amazon-apigateway-integration:\n        type: mock\n"
        "        uri: http://example.com/ping\n"
        "  /hello:\n    get:\n      responses: {'200': {description: ok}}\n"
    )
    ops = operations(build_definition(make_project(config_with_openapi("api/mock.yaml"))).document)

    assert ops[("/ping", "get")][INTEGRATION] == {"type": "mock", "uri": "http://example.com/ping"}
    assert ops[("/hello", "get")][INTEGRATION]["uri"] == ALIAS_URI


def test_path_level_parameters_move_into_each_operation(make_project, project_dir):
    # moto would import a path item's `parameters` key as an HTTP method.
    (project_dir / "api" / "params.yaml").write_text(
        "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n"
        "  /items/{id}:\n    summary: one item\n"
        "    parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n"
        "    get: {responses: {'200': {description: ok}}}\n"
    )
    document = build_definition(make_project(config_with_openapi("api/params.yaml"))).document

    assert set(document["paths"]["/items/{id}"]) == {"get"}
    assert document["paths"]["/items/{id}"]["get"]["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]


SWAGGER = """\
swagger: "2.0"
info: {title: pets, version: "1"}
consumes: [application/json]
produces: [application/json]
paths:
  /pets:
    get:
      parameters:
        - {name: limit, in: query, type: integer, required: false}
      responses:
        "200":
          description: the pets
          schema: {type: array, items: {$ref: "#/definitions/Pet"}}
    post:
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: "#/definitions/Pet"}}
      responses:
        "201": {description: created}
definitions:
  Pet:
    type: object
    properties: {name: {type: string}}
"""


def test_swagger2_becomes_openapi3(make_project, project_dir):
    (project_dir / "api" / "swagger.yaml").write_text(SWAGGER)
    document = build_definition(make_project(config_with_openapi("api/swagger.yaml"))).document

    assert document["openapi"].startswith("3.")
    assert "swagger" not in document and "definitions" not in document
    assert document["components"]["schemas"]["Pet"]["properties"] == {"name": {"type": "string"}}
    get, post = document["paths"]["/pets"]["get"], document["paths"]["/pets"]["post"]
    assert get["parameters"] == [
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}}
    ]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Pet"}
    }
    assert "parameters" not in post
    assert post["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
    }
    assert post[INTEGRATION]["uri"] == ALIAS_URI


def test_a_swagger2_definition_imports_with_its_methods(make_project, project_dir):
    from sdeliver.resources.api import create_api

    (project_dir / "api" / "swagger.yaml").write_text(SWAGGER)
    project = make_project(config_with_openapi("api/swagger.yaml"))
    api_id = create_api(project, build_definition(project))

    resources = project.aws.call("apigateway", "get_resources", restApiId=api_id)["items"]
    pets = next(r for r in resources if r["path"] == "/pets")
    assert set(pets["resourceMethods"]) == {"GET", "POST"}


def test_a_json_file_is_read_as_json(make_project, project_dir):
    (project_dir / "api" / "api.json").write_text(json.dumps({
        "openapi": "3.0.1", "info": {"title": "t", "version": "1"},
        "paths": {"/j": {"get": {"responses": {"200": {"description": "ok"}}}}},
    }))
    document = build_definition(make_project(config_with_openapi("api/api.json"))).document

    assert set(document["paths"]) == {"/j"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("openapi: 3.0.1\npaths: [unclosed\n", "malformed YAML"),
        ('{"openapi": "3.0.1", "paths": ', "malformed JSON"),
        ("just a string\n", "not an OpenAPI 3 or Swagger 2.0 document"),
        ("asyncapi: 2.0.0\npaths: {/x: {get: {}}}\n", "not an OpenAPI 3 or Swagger 2.0 document"),
        ("openapi: 3.0.1\ninfo: {title: t}\npaths: {}\n", "declares no paths"),
    ],
)
def test_a_bad_definition_file_is_a_config_error_naming_api_openapi(
    make_project, project_dir, content, problem
):
    if content is not None:
        (project_dir / "api" / "bad.yaml").write_text(content)
    project = make_project(config_with_openapi("api/bad.yaml"))

    with pytest.raises(ConfigError) as raised:
        build_definition(project)

    message = str(raised.value)
    assert message.startswith("api.openapi: api/bad.yaml: ")
    assert problem in message
    assert "\n" not in message


def alias_bomb(levels: int) -> str:
    """A document whose `x-bomb` key expands to 10**levels nodes through aliases."""
    text = "x-b0: &b0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, levels):
        text += f"x-b{level}: &b{level} [{', '.join([f'*b{level - 1}'] * 10)}]\n"
    return text + f"x-bomb: *b{levels - 1}\n"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (alias_bomb(6), "too large once its aliases are expanded"),
        ("x-loop: &loop {again: *loop}\n", "an alias refers to a node that contains it"),
    ],
    ids=["a million nodes from aliases", "an alias cycle"],
)
def test_an_alias_bomb_in_the_api_file_is_refused_like_one_in_sdeliver_yaml(
    make_project, project_dir, extra, problem
):
    document = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths: {/x: {get: {}}}\n"
    (project_dir / "api" / "bomb.yaml").write_text(document + extra)
    project = make_project(config_with_openapi("api/bomb.yaml"))

    with pytest.raises(ConfigError) as raised:
        build_definition(project)

    message = str(raised.value)
    assert message.startswith("api.openapi: api/bomb.yaml: ")
    assert problem in message
    assert "\n" not in message



# -- CORS (issue 15) ------------------------------------------------------------------------


def with_cors(cors: str) -> str:
    text = config_with_openapi("api/openapi.yaml")
    return text.replace("  openapi: api/openapi.yaml", "  openapi: api/openapi.yaml\n" + cors)


def test_cors_adds_a_mock_preflight_to_every_path_and_gateway_responses(make_project):
    project = make_project(with_cors("  cors:\n    origins: [https://shop.example]\n"))
    document = build_definition(project).document

    for route in ("/hello", "/health"):
        preflight = document["paths"][route]["options"]
        integration = preflight[INTEGRATION]
        assert integration["type"] == "mock"  # API Gateway answers it, never the function
        headers = integration["responses"]["default"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == (
            "'https://shop.example'")
        assert "Access-Control-Allow-Origin" in preflight["responses"]["200"]["headers"]
        assert document["paths"][route]["get"][INTEGRATION]["type"] == "aws_proxy"
    responses = document["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    assert responses["DEFAULT_4XX"]["responseParameters"] == {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'https://shop.example'"}


def test_without_cors_the_definition_has_no_preflight(make_project):
    document = build_definition(make_project()).document

    assert all("options" not in item for item in document["paths"].values())
    assert "x-amazon-apigateway-gateway-responses" not in document


def test_cors_origins_default_to_each_environments_site_origin(make_project):
    from sdeliver.openapi import cors_origins, template_origins

    project = make_project(with_cors("  cors: {}\n"))
    origins = cors_origins(project)
    preflight = build_definition(project).document["paths"]["/hello"]["options"]

    assert origins == sorted({f"http://{d}" for d in
                              ("dromedary.example.com", "test.dromedary.example.com")})
    answer = preflight[INTEGRATION]["responses"]["default"]
    # Two origins: the template echoes the request's when it is one of them.
    assert "method.response.header.Access-Control-Allow-Origin" not in answer[
        "responseParameters"]
    assert template_origins(answer["responseTemplates"]["application/json"]) == origins


# -- foreign integrations (issue 15) ---------------------------------------------------------

FOREIGN_URI = (
    "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:eu-west-1:999999999999:function:other:${stageVariables.lambdaAlias}"
    "/invocations"
)


def test_foreign_integrations_name_region_account_and_unknown_stage_variables():
    from sdeliver.openapi import foreign_integrations

    document = {"paths": {
        "/a": {"get": {INTEGRATION: {"type": "aws_proxy", "uri": FOREIGN_URI}}},
        "/b": {"get": {INTEGRATION: {"type": "aws_proxy", "uri": ALIAS_URI}}},
        "/c": {"post": {"responses": {}}},
    }}

    found = foreign_integrations(document, region="us-east-1", account="123456789012",
                                 known={"alias"})

    assert len(found) == 1 and found[0].startswith("GET /a: ")
    for part in ("${stageVariables.lambdaAlias}", "account 999999999999", "region eu-west-1"):
        assert part in found[0]


def test_deploy_refuses_a_foreign_integration_unless_allowed(make_project, project_dir):
    (project_dir / "api" / "foreign.yaml").write_text(
        "openapi: 3.0.1\ninfo: {title: x, version: '1'}\npaths:\n  /x:\n    get:\n"
        "      responses: {'200': {description: ok}}\n"
        f"      x-amazon-apigateway-integration: {{type: aws_proxy, uri: '{FOREIGN_URI}'}}\n"
    )
    text = config_with_openapi("api/foreign.yaml")
    with pytest.raises(ConfigError) as refused:
        build_definition(make_project(text))
    allowed = text.replace("  openapi: api/foreign.yaml",
                           "  openapi: api/foreign.yaml\n  allow_foreign_integrations: true")
    definition = build_definition(make_project(allowed))

    assert "GET /x" in refused.value.message
    assert "allow_foreign_integrations" in (refused.value.hint or "")
    assert definition.document["paths"]["/x"]["get"][INTEGRATION]["uri"] == FOREIGN_URI
