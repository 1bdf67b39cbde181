"""The ``leadsync`` command line: the composition root that wires config, store, connectors and
scoring together. One module per command group; this package imports them so that each registers
its commands on the root app (``app.py``). Every command says what it does in ``--help``; errors
print one clear line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import sys

from leadsync.connectors.errors import LeadsyncError
from leadsync.sync.cli.app import app, print_error

# isort: off
# Imported for their commands, in the order ``leadsync --help`` lists them.
from leadsync.sync.cli import check, pipeline, status, leads, quarantine  # noqa: F401
from leadsync.sync.cli import analytics, demo, sandbox  # noqa: F401
from leadsync.sync.cli import state, streams, undo, runs, workers  # noqa: F401
from leadsync.sync.cli import webhooks  # noqa: F401

# isort: on

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except LeadsyncError as exc:  # raised outside a command's own handler (e.g. by a callback)
        sys.exit(print_error(exc))
