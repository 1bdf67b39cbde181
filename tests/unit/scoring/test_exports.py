"""The package exports what ``__all__`` says, and nothing in scoring does I/O or reads the clock."""

from __future__ import annotations

import ast
from pathlib import Path

from leadsync import scoring

SCORING = Path(scoring.__file__).parent


def test_all_names_exist() -> None:
    for name in scoring.__all__:
        assert hasattr(scoring, name), name
    assert sorted(scoring.__all__) == sorted(set(scoring.__all__))


def test_scoring_modules_are_pure() -> None:
    banned_imports = {"os", "io", "pathlib", "sqlite3", "sqlalchemy", "sqlmodel", "httpx", "time", "random"}
    banned_calls = {"now", "utcnow", "today", "open", "time"}
    for path in SCORING.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_imports, path
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in banned_imports, path
                assert node.module.split(".")[0] != "sync", path
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                assert name not in banned_calls, f"{path.name}:{node.lineno} calls {name}"
