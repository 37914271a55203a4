"""The code's shape as a specification: what `lint-imports` checks in .ci/run (layers, no
import cycle) is in pyproject.toml; this checks what it cannot say."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).parents[2] / "cli"
# The command layer imports what a command needs when the command runs: `sdeliver --help`
# must not load boto3, pydantic or rich.
START_UP = {"__main__.py", "app.py", "context.py"}
# Below it, only what is optional (moto and werkzeug come with sdeliver[local]) or what
# start-up must not load (rich, for output.py, which app.py imports) is imported in a
# function; everything else at the top of its module, where the import graph shows it.
LAZY_ALLOWED = ("moto", "werkzeug", "rich")


def modules() -> list[Path]:
    return sorted(p for p in CLI.rglob("*.py")
                  if "templates" not in p.parts and "commands" not in p.parts
                  and p.name not in START_UP)


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom):
                    found.append((sub.lineno, "." * sub.level + (sub.module or "")))
                elif isinstance(sub, ast.Import):
                    found.extend((sub.lineno, alias.name) for alias in sub.names)
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(CLI)))
def test_imports_below_the_command_layer_are_at_the_top_of_their_module(path: Path) -> None:
    hidden = [f"{path.relative_to(CLI)}:{line}: {name}"
              for line, name in function_level_imports(path)
              if not name.startswith(LAZY_ALLOWED)]
    assert hidden == []


def test_the_check_sees_a_function_level_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from .project import Project\n    import moto\n")
    assert function_level_imports(module) == [(2, ".project"), (3, "moto")]
