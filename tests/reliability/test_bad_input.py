"""Bad input: whatever sdeliver.yaml or the command line holds, sdeliver ends with exit 0
or a clean error (a message, a documented exit code), never a traceback.

`config validate` is the target for the configuration (no AWS). The command-line fuzz
points every AWS call at a closed loopback port, so a command that gets past its parsing
ends in a clean "cannot reach AWS" (exit 1) without ever leaving the machine.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sdeliver.app import main

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"
VALID = yaml.safe_load(EXAMPLE.read_text())
FUZZ = settings(
    max_examples=int(os.environ.get("SDELIVER_FUZZ_EXAMPLES", "600")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def validate(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-c", str(path), *args, "config", "validate"])
    out, err = capsys.readouterr()
    return code, out + err


def assert_clean(code: int, output: str, allowed: tuple[int, ...] = (0, 2)) -> None:
    """An allowed exit code, and for a failure a message that says it is one."""
    assert code in allowed, output
    assert "Traceback" not in output and "internal error" not in output, output
    if code:
        assert output.strip(), "a failure must say why"
        assert "error" in output.lower() or "usage" in output.lower(), output




@pytest.mark.parametrize("text", ["=\n", "app: !!python/name:os.system x\n"])
def test_a_yaml_constructor_error_is_one_line(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_text(text)
    code, output = validate(path, capsys)
    assert_clean(code, output, allowed=(2,))
    assert len(output.strip().splitlines()) <= 2, output


# -- sdeliver.yaml -------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["..", "../..", "/etc", "C:\\x", "~", "*", "a" * 300]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    return found


KEY_PATHS = paths(VALID)[1:]


@FUZZ
@given(where=st.sampled_from(KEY_PATHS), value=values, drop=st.booleans())
def test_a_valid_config_with_one_value_changed_is_accepted_or_refused_cleanly(
    where: tuple[Any, ...], value: Any, drop: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = copy.deepcopy(VALID)
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    if drop:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    path = tmp_path / "sdeliver.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert_clean(*validate(path, capsys))


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text_is_accepted_or_refused_cleanly(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_clean(*validate(path, capsys))


@FUZZ
@given(data=st.binary(max_size=400))
@example(data=b"\xff\xfe" + "app: x\n".encode("utf-16-le"))  # UTF-16 with a BOM
@example(data="app: caf\xe9\n".encode("latin-1"))
@example(data=b"app: x\x00\n")
def test_any_bytes_are_accepted_or_refused_cleanly(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_bytes(data)
    assert_clean(*validate(path, capsys))


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
) + "\n"


@pytest.mark.parametrize("text, says", [
    (ALIAS_BOMB, "too large once its aliases are expanded"),
    ("app: " + "x" * (2 * 1024 * 1024) + "\n", "too large for a configuration file"),
    ("[" * 5000 + "]" * 5000, "nests too deeply"),
    ("app: &a [*a]\n", "nests too deeply"),
    ("!!python/object/apply:os.system ['true']\n", "malformed YAML"),
])
def test_hostile_yaml_is_refused_cleanly(text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_text(text)
    code, output = validate(path, capsys)
    assert_clean(code, output, allowed=(2,))
    assert says in output


@pytest.mark.parametrize("key", ["function", "site"])
@pytest.mark.parametrize("source", ["../outside", "app/../../outside", "/etc", "C:\\Windows", "app\\..\\..\\x", "a\x00b"])
def test_a_source_outside_the_project_is_refused(key: str, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = copy.deepcopy(VALID)
    document[key]["source"] = source
    path = tmp_path / "sdeliver.yaml"
    path.write_text(yaml.safe_dump(document))
    code, output = validate(path, capsys)
    assert_clean(code, output, allowed=(2,))
    assert f"{key}.source" in output


def test_an_unreadable_config_is_refused_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sdeliver.yaml"
    path.write_text(EXAMPLE.read_text())
    path.chmod(0)
    if os.geteuid() == 0:  # root reads a mode-000 file (as in CI): make the read fail as it would
        def denied(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", denied)
    code, output = validate(path, capsys)
    assert_clean(code, output, allowed=(2,))
    assert "cannot be read" in output


def test_a_directory_as_config_is_refused_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = validate(tmp_path, capsys)
    assert_clean(code, output, allowed=(2,))


# -- the command line ------------------------------------------------------------------------

WORDS = [
    "init", "reconcile", "deploy", "promote", "rollback", "status", "history", "unlock",
    "config", "validate", "show", "schema", "destroy", "--env", "-e", "test", "prod", "nope",
    "--json", "-v", "--yes", "--check", "--dry-run", "--force", "--wait", "-1", "1e999", "abc",
    "--to", "test->prod", "->", "test:prod", "--canary", "150", "--steps", "0", "--limit",
    "--region", "mars-1", "--profile", "--config", "missing.yaml", "--", "-", "", "\x00",
    "--endpoint-url", "http://[::1", "--no-rollback", "--skip-order", "--from", "--help",
]


@pytest.fixture
def offline(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SDELIVER_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.chdir(app_dir)
    return app_dir


@settings(FUZZ, max_examples=int(os.environ.get("SDELIVER_FUZZ_EXAMPLES", "600")) // 2)
@given(argv=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6))
def test_any_command_line_ends_cleanly(argv: list[str], offline: Path, tripwire: Any, capsys: pytest.CaptureFixture[str]) -> None:
    if argv[:1] == ["destroy"] or ("--yes" in argv and "destroy" in argv):
        argv = ["status", *argv[1:]]  # nothing here may ever delete; destroy is tested elsewhere
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert_clean(code, out + err, allowed=(0, 1, 2, 3, 4))
