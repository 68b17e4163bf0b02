"""The CSV the product writes (import error reports, segment members): one writer for every export.

Cells come from people we do not control (a form's name field, an imported file's header), and a
spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: ``=HYPERLINK(...)`` or worse, on the marketer's machine. Every
text cell that starts with one of those gets a leading ``'`` (OWASP's rule for CSV injection),
so the spreadsheet shows it as text; numbers stay numbers. Rows are written a chunk at a time,
so an export of a million rows never sits in memory.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import IO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 1000


def csv_cell(value) -> str | int | float | Decimal:
    """``value`` as a cell a spreadsheet shows as text: None is empty, a number stays a number
    (-5 is not a formula), any other value is its text with a ``'`` before a formula start."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """The file csv.writer writes to: it hands each line back, to be streamed."""

    def write(self, value: str) -> str:
        return value


def csv_stream(*, header: Sequence[str], rows: Iterable[Sequence], chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """The header and ``rows`` as CSV text, every cell through ``csv_cell``: the header first,
    then ``chunk_rows`` lines per part (for a ``StreamingHttpResponse`` or a file)."""
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_cell(name) for name in header])
    lines = []
    for row in rows:
        lines.append(writer.writerow([csv_cell(value) for value in row]))
        if len(lines) == chunk_rows:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def csv_write(out: IO[str], *, header: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Writes the header and ``rows`` to ``out`` as ``csv_stream`` does; returns the row count."""
    count = 0

    def counted() -> Iterator[Sequence]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    for part in csv_stream(header=header, rows=counted()):
        out.write(part)
    return count
