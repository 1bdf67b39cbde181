"""Dotted paths into parsed JSON (``"paging.next.after"``, ``"meta.total"``, ``"errors.0.message"``)."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "get_path"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def get_path(data: Any, path: str, default: Any = None) -> Any:
    """The value at ``path`` in ``data``, or ``default`` when any step is absent.

    Steps are dict keys, or list indexes when the step is all digits. The empty path is ``data``.
    """
    if not path:
        return data
    current = data
    for step in path.split("."):
        if isinstance(current, dict):
            if step not in current:
                return default
            current = current[step]
        elif isinstance(current, list) and step.isdigit():
            index = int(step)
            if index >= len(current):
                return default
            current = current[index]
        else:
            return default
    return current
