"""Progress bars for the pipeline commands (on stderr, so ``--json`` output stays clean)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from leadsync.sync.cli.app import err


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        yield progress


def reporter_for(progress: Any) -> Any:
    from leadsync.sync.pipeline import Reporter

    if progress is None:
        return Reporter()
    tasks: dict[str, Any] = {}
    totals: dict[str, list[int]] = {}

    def pulled(source: str, stream: str, counts: Any) -> None:
        key = f"pull {source}"
        if key not in tasks:
            tasks[key] = progress.add_task(f"pull {source}", total=None, detail="")
            totals[key] = [0, 0]
        totals[key][0] += counts.contacts
        totals[key][1] += counts.events
        progress.update(
            tasks[key],
            advance=counts.contacts + counts.events,
            detail=f"{stream}: {totals[key][0]} contacts, {totals[key][1]} events",
        )

    def scored(n: int) -> None:
        if "score" not in tasks:
            tasks["score"] = progress.add_task("score", total=None, detail="persons")
        progress.update(tasks["score"], advance=n)

    def pushing(source: str, total: int) -> None:
        tasks[f"push {source}"] = progress.add_task(f"push {source}", total=total, detail="updates")

    def pushed(source: str, n: int) -> None:
        progress.update(tasks[f"push {source}"], advance=n)

    return Reporter(pulled=pulled, scored=scored, pushing=pushing, pushed=pushed)
