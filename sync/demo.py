"""``leadsync demo``: the whole pipeline against a local sandbox, start to finish.

It generates a world, serves the three emulators on free loopback ports at the platforms' default
rate limits, writes a config for them, then runs check, sync (pull, score, push), prints the
leaderboard, reads the written fields back from each platform and runs a second sync that must
write nothing. Everything lands in one folder (``.demo/`` by default) to inspect afterwards.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["DemoResult", "free_port", "read_back"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoResult:
    checked: int = 0
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)


def read_back(
    server: Any,
    people: list[dict[str, Any]],
    field_of: Callable[[str, dict[str, Any]], dict[str, Any] | None],
) -> DemoResult:
    """Compare what each platform now holds for ``people`` with the scores in the store.

    ``field_of(platform, inspected)`` extracts the leadsync fields from the sandbox's view of a
    contact (the admin endpoint shows exactly what the platform stores).
    """
    result = DemoResult()
    with httpx.Client(timeout=10) as client:
        for person in people:
            name = next(iter(server.state.hosts))
            view = client.get(f"{server.base_url(name)}/_sandbox/persons/{person['email']}")
            if view.status_code != 200:
                result.mismatches.append(f"{person['email']}: unknown to the sandbox")
                continue
            for platform, inspected in view.json()["platforms"].items():
                fields = field_of(platform, inspected)
                if fields is None:
                    continue
                result.checked += 1
                expected = {"affinity": str(int(person["affinity"])), "engagement": str(int(person["engagement"])), "grade": person["grade"]}
                got = {k: None if fields.get(k) is None else str(fields.get(k)) for k in expected}
                if got == expected:
                    result.matched += 1
                else:
                    result.mismatches.append(f"{person['email']} on {platform}: expected {expected}, platform has {got}")
    return result


def demo_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in ("leadsync.db", "leadsync.db-wal", "leadsync.db-shm", "leadsync.toml"):
        (path / name).unlink(missing_ok=True)
    return path
