"""Tables that fit the terminal (80 columns and up) and stay readable.

Every command's table is declared as ``Column`` rows and printed by ``print_table``:

* a column with ``drop > 0`` is left out when the table would not fit, the highest ``drop`` first
  (ties: the rightmost first), and the caption names what was left out;
* a ``fold`` column (a reason, a detail) wraps its text inside the cell and gets the width that is
  left; every other column keeps each value on one line, so an email or a grade is never broken
  (when even the columns that stay cannot fit, the longest values end in an ellipsis);
* ``wide=True`` (``--wide``) shows every column, each value on one line, however wide that makes
  the table (pipe it to ``less -S``).

Cells are plain text: a ``str`` becomes a ``rich.text.Text``, so square brackets in an email, a
reason or a config key are printed as they are, never read as console markup. Pass a ``Text`` for
a styled cell (``status_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "fitted_table", "print_table", "status_text"]

Cell = str | Text

# A column costs its content plus one space of padding each side and one border character; the
# table adds one more border at the right.
_COLUMN_FRAME = 3
_TABLE_FRAME = 1


@dataclass(frozen=True)
class Column:
    """One column: its header, when it may be left out, and whether long values wrap."""

    header: str
    drop: int = 0  # 0: always shown; otherwise left out when too wide, the highest first
    fold: bool = False  # long values wrap inside the cell (this column takes the width left over)
    min_width: int = 20  # a fold column is not squeezed below this
    justify: Literal["left", "right", "center"] = "left"


def status_text(ok: bool, good: str = "ok", bad: str = "FAIL") -> Text:
    return Text(good, style="green") if ok else Text(bad, style="red")


def _cell(value: Cell) -> Text:
    return value if isinstance(value, Text) else Text(str(value))


def _natural(columns: Sequence[Column], rows: Sequence[Sequence[Text]], index: int) -> int:
    return max([cell_len(columns[index].header), *(cell_len(row[index].plain) for row in rows)], default=0)


def _needed(columns: Sequence[Column], rows: Sequence[Sequence[Text]], shown: Sequence[int]) -> int:
    """The width the shown columns need: fixed columns whole, fold columns at their minimum."""
    total = _TABLE_FRAME
    for index in shown:
        natural = _natural(columns, rows, index)
        total += _COLUMN_FRAME + (min(natural, columns[index].min_width) if columns[index].fold else natural)
    return total


def fitted_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    width: int,
    title: str | None = None,
    caption: str | None = None,
    wide: bool = False,
) -> tuple[Table, int]:
    """The table for ``width`` columns of terminal, and the width to print it at."""
    cells = [[_cell(value) for value in row] for row in rows]
    shown = list(range(len(columns)))
    if not wide:
        while _needed(columns, cells, shown) > width:
            droppable = [i for i in shown if columns[i].drop > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    hidden = [columns[i].header for i in range(len(columns)) if i not in shown]
    notes = [caption] if caption else []
    if hidden:
        notes.append(f"not shown at this width: {', '.join(hidden)} (--wide shows every column)")
    table = Table(
        title=None if title is None else Text(title, style="italic"),
        caption=Text("\n".join(notes), style="dim") if notes else None,
        caption_justify="left",
    )
    for index in shown:
        column = columns[index]
        folds = column.fold and not wide
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=not folds,
            overflow="fold" if folds else "ellipsis",
            min_width=min(column.min_width, _natural(columns, cells, index)) if folds else None,
        )
    for row in cells:
        table.add_row(*(row[index] for index in shown))
    natural = _TABLE_FRAME + sum(_COLUMN_FRAME + _natural(columns, cells, i) for i in shown)
    return table, max(width, natural) if wide else width


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    caption: str | None = None,
    wide: bool = False,
) -> None:
    """Print a fitted table on ``console`` (see the module docstring)."""
    table, width = fitted_table(columns, rows, width=console.width, title=title, caption=caption, wide=wide)
    if width > console.width:  # --wide: as wide as the table needs (a console never prints wider)
        console = Console(
            file=console.file,
            width=width,
            force_terminal=console.is_terminal,
            color_system=console.color_system,  # type: ignore[arg-type]
            no_color=console.no_color,
        )
    console.print(table, crop=not wide)
