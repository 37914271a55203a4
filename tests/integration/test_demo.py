"""`sdeliver demo`: the README's main job, and its checks can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdeliver.operations.demo import run_demo
from sdeliver.progress import Silent

pytestmark = pytest.mark.integration


def test_demo_runs_the_whole_story_and_exits_0(sdeliver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = sdeliver("demo", "--dir", str(tmp_path), "--json", cwd=tmp_path)
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    steps = {c["step"] for c in report["checks"]}
    assert {"init", "deploy", "promote", "deploy v2", "promote v2", "rollback"} <= steps
    assert len(report["checks"]) >= 15


def test_a_broken_sample_app_fails_the_demo(tmp_path: Path) -> None:
    def break_the_app(app: Path) -> None:
        handler = app / "app" / "app.py"
        handler.write_text(handler.read_text().replace('"ok": True', '"ok": False'))

    report = run_demo(Silent(), directory=tmp_path, prepare=break_the_app)
    assert report.ok is False
    failed = [c.what for c in report.checks if not c.ok]
    assert "deploy to test succeeds with e2e passing" in failed
