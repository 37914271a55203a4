"""`sdeliver new NAME`: a working app that sdeliver accepts as it stands."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from sdeliver.config import load_config

FILES = {
    "sdeliver.yaml",
    ".gitignore",
    "app/app.py",
    "api/openapi.yaml",
    "site/index.html",
    "site/app.js",
    "site/error.html",
    "tests/e2e/test_app.py",
}


def written(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_new_writes_the_app_in_a_directory_of_its_name(sdeliver, tmp_path):
    result = sdeliver("new", "shop", cwd=tmp_path)
    assert result.code == 0, result.output
    assert written(tmp_path / "shop") == FILES


def test_new_writes_a_config_that_validates(sdeliver, tmp_path):
    sdeliver("new", "shop", cwd=tmp_path)
    config = load_config(tmp_path / "shop" / "sdeliver.yaml")
    assert config.app == "shop"
    assert list(config.environments) == ["test", "prod"]
    assert {e.domain for e in config.environments.values()} == {"test.shop.example.com",
                                                                 "shop.example.com"}
    assert {env.e2e for env in config.environments.values()} == {"python tests/e2e/test_app.py"}
    assert config.api.openapi == "api/openapi.yaml"
    assert config.dns is not None and config.dns.zone == "example.com"
    assert config.pipeline is None and config.build.commands == []


def test_new_apps_use_https_hosting_and_files_without_the_key_keep_s3_website(sdeliver, tmp_path):
    from sdeliver.config import parse_config

    result = sdeliver("new", "shop", cwd=tmp_path)
    assert "first set dns.zone (example.com) and the domains" in result.stderr
    path = tmp_path / "shop" / "sdeliver.yaml"
    config = load_config(path)
    assert config.site is not None and config.site.hosting == "cloudfront"
    text = path.read_text(encoding="utf-8")
    assert "  hosting: cloudfront" in text  # written explicitly, not a changed default
    older = text.replace("  hosting: cloudfront", "", 1)
    site = parse_config(older, path).site
    assert site is not None and site.hosting == "s3-website"


def test_new_names_the_app_in_every_file(sdeliver, tmp_path):
    sdeliver("new", "shop", cwd=tmp_path)
    root = tmp_path / "shop"
    assert not [f for f in FILES if "{{app}}" in (root / f).read_text(encoding="utf-8")]
    assert "<title>shop</title>" in (root / "site/index.html").read_text(encoding="utf-8")


def test_new_openapi_declares_both_routes_with_a_description(sdeliver, tmp_path):
    import yaml

    sdeliver("new", "shop", cwd=tmp_path)
    document = yaml.safe_load((tmp_path / "shop/api/openapi.yaml").read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    assert document["info"]["description"]
    assert set(document["paths"]) == {"/hello", "/health"}


def test_new_handler_answers_hello_and_health(sdeliver, tmp_path):
    sdeliver("new", "shop", cwd=tmp_path)
    handler = runpy.run_path(str(tmp_path / "shop/app/app.py"))["handler"]
    hello = handler({"path": "/hello", "queryStringParameters": {"name": "x"}}, None)
    health = handler({"path": "/health"}, None)
    assert hello["statusCode"] == 200
    assert json.loads(hello["body"]) == {"message": "Hello, x!", "version": "v1"}
    assert json.loads(health["body"])["ok"] is True


def test_new_writes_into_an_empty_directory_given_with_dir(sdeliver, tmp_path):
    (tmp_path / "here").mkdir()
    result = sdeliver("new", "shop", "--dir", "here", cwd=tmp_path)
    assert result.code == 0, result.output
    assert load_config(tmp_path / "here" / "sdeliver.yaml").app == "shop"


def test_new_refuses_a_directory_that_is_not_empty(sdeliver, tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "notes.txt").write_text("mine", encoding="utf-8")
    result = sdeliver("new", "shop", cwd=tmp_path)
    assert result.code == 2
    assert "not empty" in result.stderr
    assert written(tmp_path / "shop") == {"notes.txt"}


def test_new_refuses_an_invalid_app_name(sdeliver, tmp_path):
    result = sdeliver("new", "Shop_1", cwd=tmp_path)
    assert result.code == 2
    assert not (tmp_path / "Shop_1").exists()


def test_new_refuses_an_unknown_template(sdeliver, tmp_path):
    result = sdeliver("new", "shop", "--template", "cobol", cwd=tmp_path)
    assert result.code == 2
    assert "python-api" in result.stderr
