"""``python -m leadsync``: the same as the ``leadsync`` command."""

from leadsync.sync.cli import main

if __name__ == "__main__":
    main()
