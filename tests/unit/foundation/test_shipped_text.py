"""Nothing that ships points at ``../shared``: an installed user has only the package and its README
(issue 24). Facts are cited by fact sheet and section ("hubspot.md §4.4") or by the vendor's URL."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# What `pip install .` puts on a user's machine: the package folders (code, model presets, starter
# config, migrations) and the README (the package's long description).
PACKAGE_FOLDERS = ("config", "connectors", "scoring", "sync", "sandbox", "leadsync")
SHARED_PATH = re.compile(r"\.\./shared|\bshared/(docs|specs)\b")


def shipped_files() -> list[Path]:
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    files = [ROOT / readme, ROOT / "pyproject.toml"]
    for folder in PACKAGE_FOLDERS:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".db"}
        ]
    return files


def test_no_shipped_file_points_at_the_shared_folder() -> None:
    files = shipped_files()
    assert any(path.name == "default.toml" for path in files) and any(
        path.name == "README.md" for path in files
    )
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if SHARED_PATH.search(line)
    ]
    assert found == []
