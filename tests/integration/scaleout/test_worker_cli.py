"""``leadsync worker`` and ``enqueue`` refuse a config they cannot work with: one line naming the
setting, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadsync.sync.cli import app

SOURCE = """
[[sources]]
name = "hubspot"
platform = "hubspot"
base_url = "http://127.0.0.1:9"
[sources.inline_secrets]
token = "pat-na1-x"
"""


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "leadsync.toml"
    path.write_text(body + SOURCE)
    return path


@pytest.mark.parametrize("command", [["worker"], ["enqueue"]])
def test_the_embedded_engine_is_told_to_use_procrastinate(tmp_path: Path, command: list[str]) -> None:
    config = _config(tmp_path, f'[store]\nurl = "sqlite:///{tmp_path / "x.db"}"\n')
    result = CliRunner().invoke(app, ["--config", str(config), *command])
    assert result.exit_code == 2
    assert "engine.kind" in result.output and "procrastinate" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["worker"], ["enqueue"]])
def test_procrastinate_with_a_sqlite_store_is_refused(tmp_path: Path, command: list[str]) -> None:
    body = f'[store]\nurl = "sqlite:///{tmp_path / "x.db"}"\n[engine]\nkind = "procrastinate"\n'
    result = CliRunner().invoke(app, ["--config", str(_config(tmp_path, body)), *command])
    assert result.exit_code == 2
    assert "store.url" in result.output and "PostgreSQL" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_engine_kind_names_the_choices(tmp_path: Path) -> None:
    body = f'[store]\nurl = "sqlite:///{tmp_path / "x.db"}"\n[engine]\nkind = "celery"\n'
    result = CliRunner().invoke(app, ["--config", str(_config(tmp_path, body)), "worker"])
    assert result.exit_code == 2
    assert "engine.kind" in result.output or "kind" in result.output
    assert "Traceback" not in result.output
