"""A connector for pipeline tests that only pulls: its ``pull`` is the test's, the rest refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadsync.connectors.base import CheckResult, Connector, PushReport


class PullOnlyConnector(Connector):
    """Subclasses set ``platform`` and define ``streams`` and ``pull``."""

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    def ensure_fields(self) -> None:
        raise NotImplementedError

    def push(self, updates: Sequence[Any]) -> PushReport:
        raise NotImplementedError

    def read_fields(self, remote_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        raise NotImplementedError
