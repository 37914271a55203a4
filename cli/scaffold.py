"""Writing a new app from a template: what `sdeliver new` and `sdeliver init` in an empty
directory share (and the demo)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

DEFAULT_TEMPLATE = "python-api"
PLACEHOLDER = "{{app}}"
# Files a package cannot ship under their real name.
RENAMED = {"gitignore": ".gitignore"}
SKIPPED = {"__pycache__"}


def templates() -> Traversable:
    return resources.files("sdeliver.templates")


def template_names() -> list[str]:
    return sorted(
        item.name for item in templates().iterdir()
        if item.is_dir() and not item.name.startswith((".", "_"))
    )


def scaffold(source: Traversable, target: Path, app: str) -> list[str]:
    """Copy a template directory, naming the app; returns the files written (relative)."""
    written: list[str] = []

    def copy(folder: Traversable, into: Path) -> None:
        into.mkdir(parents=True, exist_ok=True)
        for item in sorted(folder.iterdir(), key=lambda i: i.name):
            if item.name in SKIPPED or item.name.endswith(".pyc"):
                continue
            destination = into / RENAMED.get(item.name, item.name)
            if item.is_dir():
                copy(item, destination)
                continue
            text = item.read_text(encoding="utf-8").replace(PLACEHOLDER, app)
            destination.write_text(text, encoding="utf-8")
            written.append(destination.relative_to(target).as_posix())

    copy(source, target)
    return written


def write_app(target: Path, app: str, template: str = DEFAULT_TEMPLATE) -> list[str]:
    """The template's files in `target`, named `app`: sdeliver.yaml, app/, api/, site/,
    tests/. Returns the files written (relative)."""
    return scaffold(templates().joinpath(template), target, app)
