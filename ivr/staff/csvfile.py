"""The roster's CSV: HR exports parsed all or nothing, and the roster exported back.

An import is all or nothing: `parse_roster` reports every bad row of the file in one
`RosterError`, naming the line, before anything reaches `RosterStore`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator

from ivr import spreadsheet
from ivr.errors import InvalidNumberError
from ivr.numbers import UNPRINTABLE, normalize_number
from ivr.staff.columns import MAX_ROW_CHARS, Columns, Problems, columns, fail, fold, header
from ivr.staff.roster import Person

#: Limits of one import; beyond them the file is refused, naming the line.
MAX_ROWS = 200_000
MAX_FIELD_CHARS = 200
MAX_PHONES = 5

LANGUAGES = ("fr", "en")


# -- values -------------------------------------------------------------------------------

_LANGUAGE = {
    **dict.fromkeys(("fr", "fra", "fre", "francais", "french", "frfr"), "fr"),
    **dict.fromkeys(("en", "eng", "anglais", "english", "engb", "enus"), "en"),
}
_ON_CALL = {
    **dict.fromkeys(("", "0", "no", "non", "n", "false", "faux", "f"), False),
    **dict.fromkeys(("1", "yes", "oui", "y", "o", "true", "vrai", "t", "x"), True),
}
_ROLE = re.compile(r"[a-z0-9_]{1,40}")
_TAG = re.compile(r"[a-z0-9_]{1,40}")
_TAG_SEPARATORS = re.compile(r"[|,\s]+")
#: A mail address as mail servers take it: no spaces, quotes, angle brackets or line breaks.
_EMAIL = re.compile(
    r"(?=.{3,254}$)[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
)
# Controls and the format characters that reorder text on screen (U+202E...): a name holding
# them shows in the console, the reports and the CSV as something else.
_CONTROL = UNPRINTABLE
# Spreadsheets format numbers with no-break and thin spaces: visual separators like ' '.
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})
_ROLE_SEPARATORS = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def _role(text: str) -> str:
    """A name `--role` and quotas can use: "Sage-femme" -> "sage_femme", "IDE" -> "ide"."""
    ascii_text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )
    return _ROLE_SEPARATORS.sub("_", ascii_text.lower()).strip("_")


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        # Count lines the way the reader will: \r\n, \r and \n each end one.
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        column = exc.start - max(before.rfind(b"\n"), before.rfind(b"\r"))
        if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            what = "the file is UTF-16 (Excel 'Unicode text')"
        else:
            what = (
                f"the file is not UTF-8 (byte 0x{data[exc.start]:02X}, byte {column} of the line)"
            )
        raise fail(line, f"{what}: re-export the file as CSV UTF-8") from None


def _physical_lines(lines: Iterator[str], first: int, problems: Problems) -> Iterator[str]:
    """The lines after the header; a huge or binary one is reported and read as blank."""
    for number, line in enumerate(lines, first):
        if len(line) > MAX_ROW_CHARS:
            problems.add(number, f"huge row: {len(line)} characters ({MAX_ROW_CHARS} at most)")
            yield "\n"
        elif "\x00" in line:
            problems.add(number, "NUL byte: a binary or UTF-16 file? re-export it as CSV UTF-8")
            yield "\n"
        else:
            yield line


def parse_roster(data: bytes, *, default_language: str = "fr") -> list[Person]:
    """Parse an HR export (CSV, `;` or `,`, UTF-8); all of it, or RosterError listing every problem.

    Line numbers count the header as line 1, as a spreadsheet or an editor shows them.
    """
    if default_language not in LANGUAGES:
        raise ValueError(f"default_language must be one of {LANGUAGES}, got {default_language!r}")
    lines = iter(io.StringIO(_decode(data), newline=""))
    header_line, delimiter, names = header(lines)
    parser = _Parser(columns(names, header_line), default_language)
    # The limit is process-wide: set it for this parse only.
    previous_limit = csv.field_size_limit(MAX_ROW_CHARS)
    try:
        people = parser.rows(lines, header_line, delimiter)
    finally:
        csv.field_size_limit(previous_limit)
    parser.check_backups()
    if parser.problems.total:
        raise parser.problems.error()
    if not people:
        raise fail(header_line, "no staff in the roster (a header and no rows)")
    return people


class _Parser:
    """The rows of one file: people, and every problem met on the way."""

    def __init__(self, columns: Columns, default_language: str) -> None:
        self.columns = columns
        self.default_language = default_language
        self.problems = Problems()
        #: id -> line of every row that gave one, good or bad (no cascades of "unknown backup").
        self.ids: dict[str, int] = {}
        #: (line, id, backup id), checked once every id is known.
        self.backups: list[tuple[int, str, str]] = []

    def add(self, line: int, column: int | None, reason: str) -> None:
        if column is not None:
            reason = f"column {self.columns.names[column]!r}: {reason}"
        self.problems.add(line, reason)

    def rows(self, lines: Iterator[str], header_line: int, delimiter: str) -> list[Person]:
        people: list[Person] = []
        physical = _physical_lines(lines, header_line + 1, self.problems)
        reader = csv.reader(physical, delimiter=delimiter, strict=True)
        width = len(self.columns.names)
        count = 0
        while True:
            line = header_line + reader.line_num + 1
            try:
                raw = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    reason = f"huge row: a field runs on past {MAX_ROW_CHARS} characters"
                    self.add(line, None, f'{reason}; a quote (") left open?')
                    break  # most likely the rest of the file is inside that field
                end = header_line + reader.line_num
                where = f" (the row runs from line {line} to {end})" if end > line else ""
                self.add(line, None, f"CSV syntax error: {exc}{where}")
                continue
            # A quote before a formula character is how exports keep spreadsheets safe.
            row = [spreadsheet.uncell(f.strip()) for f in raw]
            if not any(row):
                continue
            count += 1
            if count > MAX_ROWS:
                self.add(line, None, f"more than {MAX_ROWS} rows: is this the right file?")
                break
            if len(row) != width:
                if len(row) < width or any(row[width:]):
                    self.add(line, None, f"{len(row)} fields where the header has {width}")
                    if self.columns.id < len(row) and row[self.columns.id]:
                        self.ids.setdefault(row[self.columns.id], line)
                    continue
                del row[width:]  # empty cells a spreadsheet left at the end of the row
            if sum(map(len, raw)) + len(raw) > MAX_ROW_CHARS:
                self.add(line, None, f"huge row: more than {MAX_ROW_CHARS} characters")
                continue
            person = self.person(row, line)
            if person is not None:
                people.append(person)
        return people

    def person(self, row: list[str], line: int) -> Person | None:
        """The person on this row, or None when it has problems (all of them reported)."""
        before = self.problems.total
        if not self.fields_fit(row, line):
            return None
        c = self.columns
        pid = self.person_id(row, line)
        name = self.name(row, line)
        role = self.role(row, line)
        phones = self.phones(row, line)
        language = self.language(row, line)
        on_call = self.on_call(row, line)
        backup = row[c.backup] if c.backup is not None else ""
        if backup:
            self.backups.append((line, pid, backup))
        tags = self.tags(row, line)
        sms = self.sms(row, line)
        email = self.email(row, line)
        if self.problems.total > before:
            return None
        return Person(
            id=pid,
            name=name,
            role=role,
            unit=row[c.unit] if c.unit is not None else "",
            phones=phones,
            language=language,
            on_call=on_call,
            backup=backup or None,
            tags=tags,
            sms=sms,
            email=email,
        )

    def fields_fit(self, row: list[str], line: int) -> bool:
        """No field too long, no control character; else each is reported."""
        # Whole-row checks first, field by field only when they find something: rows are many.
        if max(map(len, row)) <= MAX_FIELD_CHARS and not _CONTROL.search("".join(row)):
            return True
        for i in self.columns.read:
            if len(row[i]) > MAX_FIELD_CHARS:
                self.add(line, i, f"{len(row[i])} characters ({MAX_FIELD_CHARS} at most)")
            elif _CONTROL.search(row[i]):
                self.add(line, i, "a line break, control or invisible format character")
        return False

    def person_id(self, row: list[str], line: int) -> str:
        c = self.columns
        pid = row[c.id]
        if not pid:
            self.add(line, c.id, "missing id")
        elif pid in self.ids:
            self.add(line, c.id, f"duplicate id {pid!r} (first on line {self.ids[pid]})")
        else:
            self.ids[pid] = line
        return pid

    def name(self, row: list[str], line: int) -> str:
        c = self.columns
        name = row[c.name] if c.name is not None else ""
        if not name:
            first = row[c.first_name] if c.first_name is not None else ""
            last = row[c.last_name] if c.last_name is not None else ""
            name = f"{first} {last}".strip()
        if not name:
            self.add(line, c.name if c.name is not None else c.last_name, "missing name")
        return name

    def role(self, row: list[str], line: int) -> str:
        c = self.columns
        role = _role(row[c.role])
        if not role:
            self.add(line, c.role, "missing role")
        elif not _ROLE.fullmatch(role):
            self.add(line, c.role, f"role {role!r} is longer than 40 characters")
        return role

    def language(self, row: list[str], line: int) -> str:
        c = self.columns
        if c.language is None or not row[c.language]:
            return self.default_language
        found = _LANGUAGE.get(fold(row[c.language]))
        if found is None:
            self.add(line, c.language, f"language {row[c.language]!r} is not fr or en")
            return self.default_language
        return found

    def on_call(self, row: list[str], line: int) -> bool:
        c = self.columns
        if c.on_call is None:
            return False
        flag = _ON_CALL.get(fold(row[c.on_call]))
        if flag is None:
            self.add(line, c.on_call, f"{row[c.on_call]!r} is not 1/0, yes/no, oui/non or x")
            return False
        return flag

    def tags(self, row: list[str], line: int) -> frozenset[str]:
        c = self.columns
        if c.tags is None or not row[c.tags]:
            return frozenset()
        tags = frozenset(t.lower() for t in _TAG_SEPARATORS.split(row[c.tags]) if t)
        for tag in sorted(t for t in tags if not _TAG.fullmatch(t)):
            self.add(line, c.tags, f"tag {tag!r}: only a-z, 0-9 and _, 40 at most")
        return tags

    def sms(self, row: list[str], line: int) -> str | None:
        """The row's SMS number, validated like the phones (None: the first mobile)."""
        c = self.columns
        if c.sms is None or not row[c.sms].strip():
            return None
        try:
            return normalize_number(row[c.sms].translate(_SPACES))
        except InvalidNumberError as exc:
            self.add(line, c.sms, str(exc))
            return None

    def email(self, row: list[str], line: int) -> str | None:
        c = self.columns
        if c.email is None or not row[c.email].strip():
            return None
        address = row[c.email].strip()
        if not _EMAIL.fullmatch(address):
            self.add(line, c.email, f"{address!r} is not a mail address")
            return None
        return address

    def phones(self, row: list[str], line: int) -> tuple[str, ...]:
        """Every number of the row's phone columns, in column order, each once."""
        before = self.problems.total
        phones: list[str] = []
        for i, _ in self.columns.phones:
            for raw in row[i].split("|"):
                if not raw.strip():
                    continue
                try:
                    number = normalize_number(raw.translate(_SPACES))
                except InvalidNumberError as exc:
                    self.add(line, i, str(exc))
                    continue
                if number not in phones:
                    phones.append(number)
        if len(phones) > MAX_PHONES:
            self.add(line, None, f"{len(phones)} phone numbers ({MAX_PHONES} at most)")
        elif not phones and self.problems.total == before:
            self.add(line, None, "no phone number")
        return tuple(phones)

    def check_backups(self) -> None:
        for line, pid, backup in self.backups:
            if backup == pid:
                self.add(line, self.columns.backup, f"{pid!r} is their own backup")
            elif backup not in self.ids:
                self.add(line, self.columns.backup, f"backup {backup!r} is not in the roster")


def export_csv(people: Iterable[Person]) -> str:
    """The roster as CSV (`;`, one `phones` column, |-separated) that parse_roster reads back;
    safe to open in a spreadsheet (`ivr.spreadsheet`)."""
    rows = (
        (
            p.id,
            p.name,
            p.role,
            p.unit,
            "|".join(p.phones),
            p.language,
            "1" if p.on_call else "0",
            p.backup or "",
            "|".join(sorted(p.tags)),
            p.sms or "",
            p.email or "",
        )
        for p in people
    )
    return spreadsheet.write([EXPORT_COLUMNS, *rows])


EXPORT_COLUMNS = (
    "id", "name", "role", "unit", "phones", "language", "on_call", "backup", "tags", "sms",
    "email",
)  # fmt: skip
