"""CSV that is safe to open in a spreadsheet, for every export of the service.

A crisis manager opens the roster and the attempts in a spreadsheet. A cell that starts with
`=`, `+`, `-` or `@` (or a tab, or a carriage return) is a formula there: a staff member named
`=HYPERLINK("http://x","y")` would become a live link. OWASP's rule: prefix such a cell with a
single quote, which the spreadsheet shows as text and hides. Reading the roster back
(`ivr.staff.csvfile`) takes that quote off again, so an export imports unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

#: What makes a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """`value` as a cell no spreadsheet takes for a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def uncell(text: str) -> str:
    """The value behind `cell(value)`: its neutralising quote taken off."""
    return text[1:] if text[:1] == "'" and text[1:2].startswith(FORMULA_START) else text


def write(rows: Iterable[Iterable[object]], *, delimiter: str = ";") -> str:
    """The rows as CSV (CRLF, as spreadsheets write it), every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()
