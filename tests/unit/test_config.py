"""sdeliver.yaml: the example is accepted as it stands; every bad config is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdeliver.config import load_config, parse_config
from sdeliver.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"
SHARED_EXAMPLE = Path(__file__).parents[3] / "shared" / "examples" / "sdeliver.yaml"

MINIMAL = "app: shop\nenvironments:\n  test: {}\n"


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, Path("sdeliver.yaml"))


def test_the_shipped_example_is_the_shared_example() -> None:
    if not SHARED_EXAMPLE.exists():
        pytest.skip("shared/ is not beside this checkout")
    assert EXAMPLE.read_text() == SHARED_EXAMPLE.read_text()


def test_example_is_accepted_with_every_default_filled() -> None:
    config = load_config(EXAMPLE)
    assert config.app == "dromedary"
    assert config.function_name == "dromedary-app"
    assert config.api_name == "dromedary"
    assert list(config.environments) == ["test", "prod"]
    assert config.environments["prod"].domain == "dromedary.example.com"
    assert config.pipeline is not None and config.pipeline.source.branch == "serverless"
    assert config.function.architecture == "x86_64"


def test_minimal_config_fills_defaults() -> None:
    config = parse(MINIMAL)
    assert config.function_name == "shop-app"
    assert config.function.source == "app/"
    assert config.site is not None and config.site.source == "site/"
    assert config.region == "us-east-1"


def test_environment_without_e2e_is_fine() -> None:
    assert parse(MINIMAL).environments["test"].e2e is None


def test_numbers_in_function_environment_become_strings() -> None:
    config = parse(MINIMAL + "function:\n  environment:\n    PORT: 80\n    DEBUG: true\n")
    assert config.function.environment == {"PORT": "80", "DEBUG": "true"}


BAD = {
    "unknown top-level key": (
        "app: shop\nenvironments: {test: {}}\ncolour: blue\n",
        "3",
        "colour: unknown key",
    ),
    "unknown nested key": (
        "app: shop\nenvironments:\n  test:\n    e2e: x\n    bogus: 1\n",
        "5",
        "environments.test.bogus: unknown key",
    ),
    "wrong type": (
        "app: shop\nfunction:\n  memory: lots\nenvironments: {test: {}}\n",
        "3",
        "function.memory",
    ),
    "memory too small": (
        "app: shop\nfunction:\n  memory: 64\nenvironments: {test: {}}\n",
        "3",
        "function.memory",
    ),
    "timeout too long": (
        "app: shop\nfunction:\n  timeout: 901\nenvironments: {test: {}}\n",
        "3",
        "function.timeout",
    ),
    "bad app name": ("app: Shop_App\nenvironments: {test: {}}\n", "1", "app"),
    "missing app": ("environments: {test: {}}\n", "1", "app: is required"),
    "no environments": ("app: shop\nenvironments: {}\n", "2", "environments"),
    "duplicate domain": (
        "app: shop\ndns: {zone: example.com}\nenvironments:\n  test: {domain: a.example.com}\n"
        "  prod: {domain: a.example.com}\n",
        "5",
        "environments.prod.domain: a.example.com is already the domain of environment test",
    ),
    "domain outside zone": (
        "app: shop\ndns: {zone: example.com}\nenvironments:\n  test: {domain: a.other.org}\n",
        "4",
        "not inside dns.zone",
    ),
    "domain without dns": (
        "app: shop\nenvironments:\n  test: {domain: a.example.com}\n",
        "3",
        "needs dns.zone",
    ),
    "path traversal in function.source": (
        "app: shop\nfunction: {source: ../../etc}\nenvironments: {test: {}}\n",
        "2",
        "function.source",
    ),
    "absolute site.source": (
        "app: shop\nsite: {source: /etc}\nenvironments: {test: {}}\n",
        "2",
        "site.source",
    ),
    "reserved env var": (
        "app: shop\nfunction:\n  environment:\n    AWS_REGION: x\nenvironments: {test: {}}\n",
        "3",
        "reserved",
    ),
    "github source without repo": (
        "app: shop\nenvironments: {test: {}}\npipeline:\n  source:\n"
        "    provider: github\n    branch: main\n",
        "4",
        "needs repo",
    ),
    "unknown source provider": (
        "app: shop\nenvironments: {test: {}}\npipeline:\n  source: {provider: svn}\n",
        "4",
        "pipeline.source.provider",
    ),
    "duplicate key": (
        "app: shop\napp: other\nenvironments: {test: {}}\n",
        "2",
        "app: duplicate key",
    ),
    "malformed YAML": ("app: shop\nenvironments: [\n", "3", "malformed YAML"),
    "not a mapping": ("- a\n- b\n", "1", "must be a mapping"),
    "reserved site config key": (
        "app: shop\nsite:\n  config: {apiBaseurl: x}\nenvironments: {test: {}}\n",
        "3",
        "site.config",
    ),
    "bad environment name": ("app: shop\nenvironments:\n  Test!: {}\n", "3", "environments.Test!"),
    # The name becomes part of S3 bucket names, which allow a-z 0-9 . - only.
    "underscore in an environment name": (
        "app: shop\nenvironments:\n  test: {}\n  pre_prod: {}\n",
        "4",
        "environments.pre_prod: 'pre_prod' is not a valid environment name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_names_file_line_and_key(case: str) -> None:
    text, line, expected = BAD[case]
    with pytest.raises(ConfigError) as raised:
        parse(text)
    message = str(raised.value)
    assert message.startswith(f"sdeliver.yaml:{line}:"), message
    assert expected in message
    assert "Traceback" not in message and len(message.splitlines()) <= 2


def test_empty_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="is empty"):
        parse("")


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        refs = ", ".join([f"*{prev}"] * 10)
        bomb += f"{cur}: &{cur} [{refs}]\n"
    with pytest.raises(ConfigError, match=r"^sdeliver\.yaml: .*too large once its aliases"):
        parse(bomb)


def test_an_alias_cycle_is_refused_naming_the_file() -> None:
    cycle = r"^sdeliver\.yaml:3: .*an alias refers to a node that contains it"
    with pytest.raises(ConfigError, match=cycle):
        parse("app: shop\nenvironments: {test: {}}\nloop: &l [*l]\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "sdeliver.yaml")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(ConfigError, match="binary"):
        load_config(path)


def test_wrong_encoding(tmp_path: Path) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_bytes("app: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_the_shipped_json_schema_is_the_models() -> None:
    import json

    from sdeliver.config import json_schema

    shipped = EXAMPLE.parent / "sdeliver.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), (
        "config/sdeliver.schema.json is stale: sdeliver config schema > config/sdeliver.schema.json"
    )


def test_the_schema_ships_in_the_package() -> None:
    from importlib import resources

    assert resources.files("sdeliver.defaults").joinpath("sdeliver.schema.json").is_file()


@pytest.mark.parametrize(("text", "line"), [
    ("app: shop\nfunction:\n  memroy: 256\nenvironments: {test: {}}\n",
     "sdeliver.yaml:3: function.memroy: unknown key (did you mean 'memory'?)"),
    ("app: shop\nenvironments:\n  test:\n    domian: a.example.com\n",
     "sdeliver.yaml:4: environments.test.domian: unknown key (did you mean 'domain'?)"),
    ("app: shop\nsite: {sorce: web/}\nenvironments: {test: {}}\n",
     "sdeliver.yaml:2: site.sorce: unknown key (did you mean 'source'?)"),
    ("app: shop\nenviroments: {test: {}}\n",
     "sdeliver.yaml:2: enviroments: unknown key (did you mean 'environments'?)"),
    ("app: shop\nenvironments: {test: {}}\nzzz: 1\n", "sdeliver.yaml:3: zzz: unknown key"),
])
def test_an_unknown_key_suggests_the_close_one(text: str, line: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert line in [each.strip() for each in str(raised.value).splitlines()]


def test_every_config_error_is_listed() -> None:
    text = "app: shop\nfunction:\n  memory: 64\n  timeout: 901\ncolour: blue\nenvironments: {test: {}}\n"
    with pytest.raises(ConfigError) as raised:
        parse(text)
    lines = str(raised.value).splitlines()
    assert lines[0] == "sdeliver.yaml: 3 errors:"
    assert [line.split(":")[1:3] for line in lines[1:]] == [
        ["3", " function.memory"], ["4", " function.timeout"], ["5", " colour"]]
    assert "more" not in str(raised.value)
