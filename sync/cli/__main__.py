"""``python -m leadsync.sync.cli``: the same as the ``leadsync`` command."""

from leadsync.sync.cli import main

main()
