"""The ``leadsync`` command line: the composition root that wires config, store, connectors and
scoring together. One module per command group; this package imports them so that each registers
its commands on the root app (``app.py``). Every command says what it does in ``--help``; errors
print one clear line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import sys

from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.sync.cli.app import EXIT_CONFIG, EXIT_FAILED, app, err

# isort: off
# Imported for their commands, in the order ``leadsync --help`` lists them.
from leadsync.sync.cli import check, pipeline, status, leads, quarantine  # noqa: F401
from leadsync.sync.cli import analytics, demo, sandbox  # noqa: F401
from leadsync.sync.cli import state, streams, undo  # noqa: F401

# isort: on
from leadsync.sync.logsetup import REDACTOR

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # raised outside a command's own handler (e.g. by a callback)
        err.print(f"[red]config error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        sys.exit(EXIT_CONFIG)
    except LeadsyncError as exc:
        err.print(f"[red]error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        sys.exit(EXIT_FAILED)
