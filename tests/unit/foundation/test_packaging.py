"""The installed package: one import namespace, ``leadsync``, over the project's top-level folders.

Builds the wheel as ``pip install .`` would (no dependencies, no network) and installs it into a
fresh virtual environment.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = ("config", "connectors", "scoring", "sync", "sandbox")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(out),
        ],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("leadsync-*.whl")
    return built


def test_every_module_of_the_folders_ships_under_leadsync(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {
        f"leadsync/{path.relative_to(ROOT).as_posix()}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert on_disk - shipped == set()
    assert {
        "leadsync/__init__.py",
        "leadsync/config/models/default.toml",
        "leadsync/config/starter.toml",
    } <= shipped
    assert any(name.startswith("leadsync/sync/migrations/versions/0001") for name in shipped)
    templates = {
        f"leadsync/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / "sync" / "templates").glob("*.j2")
    }
    assert "leadsync/sync/templates/report.html.j2" in templates and templates <= shipped  # the report's page


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        "leadsync." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert folders - listed == set()


def test_site_packages_holds_only_leadsync_after_install(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    before = {entry.name for entry in site.iterdir()}
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    added = {entry.name for entry in site.iterdir()} - before
    assert added == {"leadsync", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert not set(FOLDERS) & {entry.name for entry in site.iterdir()}
    assert (site / "leadsync" / "sync" / "templates" / "report.html.j2").is_file()  # package data installed
    imported = subprocess.run(
        [python, "-c", "import leadsync, os; print(os.path.dirname(leadsync.__file__))"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert Path(imported.stdout.strip()) == site / "leadsync"


def test_no_code_imports_a_folder_by_its_bare_name() -> None:
    """``import sync`` works from a checkout (the folder is on sys.path) and nowhere else: every
    import goes through ``leadsync``."""
    bare = re.compile(rf"^\s*(?:from|import) (?:{'|'.join(FOLDERS)})\b", re.M)
    offending = sorted(
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for top in (*FOLDERS, "leadsync", "tests", "bench")
        for path in (ROOT / top).rglob("*.py")
        for text in [path.read_text(encoding="utf-8")]
        for match in bare.finditer(text)
    )
    assert offending == []
