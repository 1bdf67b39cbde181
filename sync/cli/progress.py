"""Progress bars for the pipeline commands (on stderr, so ``--json`` output stays clean).

One bar per pulled stream, one for the score step and one per pushed source. A bar has a total
where the platform gives one (HubSpot search ``total``, Mailchimp ``total_items``, ActiveCampaign
``meta.total``; the connectors put it on each ``PullBatch`` as ``expected``), and so an ETA; a
stream whose platform gives none shows its count alone. A bar stops (a tick, its time frozen) as
soon as its stream is done, not when the whole command ends; a source that failed stops its bars
with a cross.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import ProgressColumn, SpinnerColumn, Task
from rich.text import Text

from leadsync.sync.cli.app import err

__all__ = ["CountColumn", "EtaColumn", "StateColumn", "new_progress", "progress_bars", "reporter_for"]


class StateColumn(SpinnerColumn):
    """A spinner while the bar runs; a tick when it is done, a cross when its source failed."""

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("✗", style="red") if task.fields.get("failed") else Text("✓", style="green")
        return super().render(task)  # type: ignore[return-value]


class CountColumn(ProgressColumn):
    """``1,200/5,000 contacts`` with a total, ``1,200 contacts`` without (never ``1200/?``)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        done = f"{int(task.completed):,}"
        text = done if task.total is None else f"{done}/{int(task.total):,}"
        return Text(f"{text} {unit}".rstrip(), style="progress.download")


class EtaColumn(ProgressColumn):
    """``eta 0:01:12`` while a total is known and the bar runs; nothing otherwise."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        remaining = task.time_remaining
        if task.finished or task.total is None or remaining is None:
            return Text("")
        minutes, seconds = divmod(int(remaining), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"eta {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def new_progress(console: Any = None, get_time: Any = None) -> Any:
    """The bars on ``console`` (default: stderr); ``get_time`` is a clock for tests."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    one_line = Column(no_wrap=True)
    return Progress(
        StateColumn(),
        TextColumn("{task.description}", markup=False, table_column=Column(no_wrap=True)),
        BarColumn(bar_width=12),
        CountColumn(table_column=one_line),
        EtaColumn(table_column=one_line),
        TimeElapsedColumn(table_column=one_line),
        console=console or err,
        transient=False,
        get_time=get_time,
    )


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    with new_progress() as progress:
        yield progress


def reporter_for(progress: Any) -> Any:
    """A ``sync.pipeline.Reporter`` that drives ``progress`` (None: a reporter that does nothing)."""
    from leadsync.sync.pipeline import Reporter

    if progress is None:
        return Reporter()
    tasks: dict[tuple[str, ...], Any] = {}
    open_streams: dict[str, list[tuple[str, ...]]] = {}

    def task(key: tuple[str, ...], description: str, total: int | None, unit: str) -> Any:
        if key not in tasks:
            tasks[key] = progress.add_task(description, total=total, unit=unit, failed=False)
        return tasks[key]

    def state(task_id: Any) -> Task:
        return next(t for t in progress.tasks if t.id == task_id)

    def finish(key: tuple[str, ...], ok: bool = True) -> None:
        # the total becomes what was read: the bar is full, its clock stops, the spinner gives way
        progress.update(tasks[key], total=state(tasks[key]).completed, failed=not ok)
        progress.stop_task(tasks[key])

    def reading(source: str, stream: str, batch: Any) -> None:
        key = ("pull", source, stream)
        if key not in tasks:
            open_streams.setdefault(source, []).append(key)
        task_id = task(key, f"pull {source} {stream}", None, batch.unit)
        total = None if batch.expected is None else max(batch.expected, state(task_id).completed + batch.read)
        progress.update(task_id, advance=batch.read, total=total, unit=batch.unit)

    def stream_done(source: str, stream: str) -> None:
        key = ("pull", source, stream)
        task(key, f"pull {source} {stream}", 0, "records")  # a stream with no batch at all
        finish(key)
        if key in open_streams.get(source, []):
            open_streams[source].remove(key)

    def source_done(source: str, ok: bool) -> None:
        for key in open_streams.pop(source, []):
            finish(key, ok)

    def scoring(total: int) -> None:
        task(("score",), "score", total, "persons")
        if total == 0:
            finish(("score",))

    def scored(n: int) -> None:
        task_id = task(("score",), "score", None, "persons")
        progress.update(task_id, advance=n)
        if state(task_id).finished:
            progress.stop_task(task_id)

    def pushing(source: str, total: int) -> None:
        task(("push", source), f"push {source}", total, "updates")
        if total == 0:
            finish(("push", source))

    def pushed(source: str, n: int) -> None:
        task_id = tasks[("push", source)]
        progress.update(task_id, advance=n)
        if state(task_id).finished:
            progress.stop_task(task_id)

    return Reporter(
        reading=reading,
        stream_done=stream_done,
        source_done=source_done,
        scoring=scoring,
        scored=scored,
        pushing=pushing,
        pushed=pushed,
    )
