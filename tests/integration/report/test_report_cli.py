"""`leadsync report --out` names a bad path in one line and exits 2, before any work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("out", "says"),
    [("missing-folder/report.html", "does not exist"), (".", "is a folder")],
)
def test_report_out_that_cannot_be_written_is_named_with_exit_2(tmp_path, out, says):
    done = forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(tmp_path / "none.toml"), "report", "--out", out],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    message = " ".join(done.stderr.replace("│", " ").split())
    assert "--out" in message and says in message
    assert "Traceback" not in done.stderr
