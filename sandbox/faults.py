"""Faults the sandbox injects on purpose, set through ``/_sandbox/faults``.

Two ways to ask for faults, both per platform:

* rates: a probability per kind, drawn for every request (``{"rate_limit": 0.2, "server_error": 0.05}``);
* a queue: explicit faults for the next requests, in order (``{"queue": [{"kind": "server_error",
  "count": 3}]}``), for tests that need an exact sequence.

A change takes effect on the next request. ``paths`` (a regular expression) restricts faults to
matching request paths, so a test can break one endpoint and leave the rest alone.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Fault", "FaultKind", "FaultPlan", "FaultSettings"]


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # the platform's own 429 shape, with Retry-After when retry_after is set
    BODILESS_RATE_LIMIT = "bodiless_rate_limit"  # 429 with no body (Mailchimp does this)
    SERVER_ERROR = "server_error"  # 5xx, status from `status` (default 500)
    SLOW = "slow"  # answer after `seconds` (a client timeout)
    DROP = "drop"  # close the connection before any response
    RESET = "reset"  # send headers and half the body, then reset the connection
    MALFORMED = "malformed"  # 200 with a truncated JSON body
    EXPIRE_TOKEN = "expire_token"  # every issued access token stops working (refresh needed)
    BULK_IMPORT_LIMIT = "bulk_import_limit"  # platform-specific refusal (ActiveCampaign answers 400)


# The order in which rates are drawn; the first that fires wins.
_RATE_ORDER = (
    FaultKind.DROP,
    FaultKind.RESET,
    FaultKind.SLOW,
    FaultKind.RATE_LIMIT,
    FaultKind.BODILESS_RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.MALFORMED,
)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None


@dataclass
class FaultSettings:
    """What the admin endpoint accepts (and returns)."""

    rates: dict[FaultKind, float] = field(default_factory=dict)
    retry_after: float | None = None  # for injected 429s; None sends no Retry-After header
    server_error_status: int = 500
    slow_seconds: float = 30.0
    paths: str | None = None
    seed: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> tuple[FaultSettings, list[Fault]]:
        """Parse an admin request; raise ValueError with a readable message on bad input."""
        known = {"rates", "retry_after", "server_error_status", "slow_seconds", "paths", "seed", "queue"}
        unknown = set(body) - known - {k.value for k in FaultKind}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        rates_in = dict(body.get("rates") or {})
        # Shorthand: {"rate_limit": 0.2} at the top level means the same as inside "rates".
        rates_in.update({k: v for k, v in body.items() if k in {f.value for f in FaultKind}})
        rates: dict[FaultKind, float] = {}
        for name, value in rates_in.items():
            try:
                kind = FaultKind(name)
            except ValueError:
                raise ValueError(
                    f"unknown fault kind {name!r}; known: {[k.value for k in FaultKind]}"
                ) from None
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {name} must be between 0 and 1, got {value!r}")
            rates[kind] = rate
        paths = body.get("paths")
        if paths is not None:
            re.compile(paths)
        settings = cls(
            rates=rates,
            retry_after=None if body.get("retry_after") is None else float(body["retry_after"]),
            server_error_status=int(body.get("server_error_status", 500)),
            slow_seconds=float(body.get("slow_seconds", 30.0)),
            paths=paths,
            seed=int(body.get("seed", 0)),
        )
        queue: list[Fault] = []
        for item in body.get("queue") or []:
            kind = FaultKind(item["kind"])
            fault = Fault(
                kind,
                status=item.get("status"),
                retry_after=item.get("retry_after"),
                seconds=item.get("seconds"),
            )
            queue.extend([fault] * int(item.get("count", 1)))
        return settings, queue

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": {k.value: v for k, v in self.rates.items()},
            "retry_after": self.retry_after,
            "server_error_status": self.server_error_status,
            "slow_seconds": self.slow_seconds,
            "paths": self.paths,
            "seed": self.seed,
        }


class FaultPlan:
    """Decides, per request, whether to inject a fault. Deterministic for a given seed and order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._queue: list[Fault] = []
        self._random = random.Random(0)
        self._paths: re.Pattern[str] | None = None

    def configure(self, settings: FaultSettings, queue: list[Fault], *, append: bool = False) -> None:
        with self._lock:
            self.settings = settings
            self._queue = (self._queue + queue) if append else list(queue)
            self._random = random.Random(settings.seed)
            self._paths = re.compile(settings.paths) if settings.paths else None

    def clear(self) -> None:
        self.configure(FaultSettings(), [])

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_fault(self, path: str) -> Fault | None:
        with self._lock:
            if self._paths is not None and not self._paths.search(path):
                return None
            if self._queue:
                return self._queue.pop(0)
            for kind in _RATE_ORDER:
                rate = self.settings.rates.get(kind, 0.0)
                if rate and self._random.random() < rate:
                    return self._fault_of(kind)
            return None

    def _fault_of(self, kind: FaultKind) -> Fault:
        s = self.settings
        if kind is FaultKind.RATE_LIMIT:
            return Fault(kind, retry_after=s.retry_after)
        if kind is FaultKind.SERVER_ERROR:
            return Fault(kind, status=s.server_error_status)
        if kind is FaultKind.SLOW:
            return Fault(kind, seconds=s.slow_seconds)
        return Fault(kind)
