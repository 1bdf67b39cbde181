"""Logging: readable lines by default, JSON lines with ``--log-json``, secrets always redacted.

Every handler leadsync installs carries a ``RedactingFilter`` over one process-wide ``Redactor``.
Secrets are registered with it as soon as they are read (config load, token refresh), before any
code that could log them runs; records from libraries (httpx, urllib3, apscheduler) pass through
the same handlers, so they are redacted too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pythonjsonlogger.json import JsonFormatter
from rich.console import Console
from rich.logging import RichHandler

from leadsync.connectors.redaction import RedactingFilter, Redactor

if TYPE_CHECKING:
    from leadsync.config.settings import LeadsyncConfig

__all__ = ["REDACTOR", "configure_logging", "register_secrets"]

REDACTOR = Redactor(emails=False)

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _JsonLines(JsonFormatter):
    """JSON lines whose ``time`` is ISO 8601 in UTC with its offset and milliseconds
    (``2026-11-23T22:38:01.123+00:00``), whatever the machine's time zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(*, level: str | int = "INFO", json_lines: bool = False, stream=None) -> logging.Handler:  # type: ignore[no-untyped-def]
    """Install one handler on the root logger (replacing any leadsync installed before)."""
    stream = stream or sys.stderr
    handler: logging.Handler
    if json_lines:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            _JsonLines(_FORMAT, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        )
    else:
        handler = RichHandler(
            console=Console(file=stream, stderr=stream is sys.stderr),
            show_path=False,
            rich_tracebacks=False,
            markup=False,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter(REDACTOR))
    handler.set_name("leadsync")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "leadsync":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    # Library chatter stays at WARNING unless the user asked for DEBUG.
    for noisy in ("httpx", "httpcore", "urllib3", "aiohttp.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return handler


def register_secrets(config: LeadsyncConfig, environ: dict[str, str] | None = None) -> None:
    """Teach the log redactor every secret this config can reach, before anything can log one."""
    environ = dict(os.environ) if environ is None else environ
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:  # the store URL's password: shown nowhere (public_url hides it; this catches the rest)
        store_password = make_url(config.store.url).password
    except ArgumentError:
        store_password = None
    if store_password:
        REDACTOR.add(str(store_password))
    for source in config.sources:
        values = [
            *source.inline_secrets.values(),
            *(environ.get(variable) for variable in source.secrets.values()),
        ]
        for value in filter(None, values):
            REDACTOR.add(value)
            # mailchimp.md §1: a key is "<secret>-<dc>"; the part before the data centre is the secret.
            stem, _, dc = value.rpartition("-")
            if stem and re.fullmatch(r"[a-z]{2}\d+", dc):
                REDACTOR.add(stem)
