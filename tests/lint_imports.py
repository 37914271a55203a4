"""`python -m tests.lint_imports`: the architecture's import contracts (pyproject.toml,
[tool.importlinter]: layers, no import cycle, operations never print, only local/ imports
moto), checked by import-linter.

grimp, under import-linter, finds a package by its directory's name, and sdeliver's source
is `cli/` (the product's layout): it is shown a link named `sdeliver` in a temporary
directory. Exits as `lint-imports` does: 0 when every contract is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sdeliver-imports-") as tmp:
        (Path(tmp) / "sdeliver").symlink_to(ROOT / "cli", target_is_directory=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                   "lint_imports_command()", "--config", str(ROOT / "pyproject.toml")]
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
