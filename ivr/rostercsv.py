"""The roster's CSV: HR exports parsed all or nothing, and the roster exported back.

An import is all or nothing: `parse_roster` reports every bad row of the file in one
`RosterError`, naming the line, before anything reaches `RosterStore`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import heapq
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ivr.errors import InvalidNumberError
from ivr.numbers import normalize_number
from ivr.roster import Person, RosterError

#: Limits of one import; beyond them the file is refused, naming the line.
MAX_ROWS = 200_000
MAX_ROW_CHARS = 10_000
MAX_FIELD_CHARS = 200
MAX_PHONES = 5
#: A RosterError lists this many problems at most (it counts them all).
MAX_PROBLEMS = 1000

LANGUAGES = ("fr", "en")


class _Problems:
    """Every problem counted; the MAX_PROBLEMS with the lowest line numbers kept, in order."""

    def __init__(self) -> None:
        self.total = 0
        self._heap: list[tuple[int, int, str]] = []  # (-line, -seq, reason): a max-heap

    def add(self, line: int, reason: str) -> None:
        self.total += 1
        item = (-line, -self.total, reason)
        if len(self._heap) < MAX_PROBLEMS:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def error(self) -> RosterError:
        problems = sorted(((-line, -seq, reason) for line, seq, reason in self._heap))
        listed = [(line, reason) for line, _, reason in problems]
        line, reason = listed[0]
        noun = "problem" if self.total == 1 else "problems"
        return RosterError(
            f"roster: {self.total} {noun}; first: line {line}: {reason}",
            listed,
            count=self.total,
        )


def _fail(line: int, reason: str) -> RosterError:
    problems = _Problems()
    problems.add(line, reason)
    return problems.error()


# -- columns ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _key(text: str) -> str:
    """Column names and keywords compared without case, accents, spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).lower()


_ALIASES = {
    "id": "id staff_id matricule identifiant employee_id",
    "name": "nom_prénom prénom_nom nom_et_prénom full_name nom_complet",
    "last_name": "last_name surname family_name nom_de_famille",
    "first_name": "first_name given_name prénom",
    "role": "role fonction métier grade job_title",
    "unit": "unit service pôle unité department ward",
    "phones": "phones téléphones numbers",
    "language": "language langue lang",
    "on_call": "on_call oncall astreinte",
    "backup": "backup suppléant remplaçant deputy",
    "tags": "tags tag étiquettes",
}
_KIND = {_key(alias): kind for kind, names in _ALIASES.items() for alias in names.split()}
# "Nom" or "Name" is the last name beside a "Prénom" column, the whole name otherwise.
_NOM = "nom"
_NAME_OR_LAST = {"nom", "name"}
_PHONE_COLUMN = re.compile(
    r"(?:(?:tel|telephone|phone|mobile|portable|cell|gsm)(?:numero|number|no)?"
    r"(?:home|work|domicile|travail|fixe|pro|perso|mobile|portable|bureau)?"
    r"|(?:home|work|domicile|travail|mobile|portable)(?:tel|telephone|phone)?)[1-9]?"
)
_REQUIRED = {
    "id": "id, staff_id, matricule, identifiant",
    "name": "name, nom, nom prénom, full_name; or nom + prénom, last_name + first_name",
    "role": "role, fonction, métier, grade",
    "phone": "phone, phone1-phone5, mobile, home, work, portable, domicile, travail, "
    "téléphone, tel, or one phones column with |-separated numbers",
}


def _column_kind(name: str) -> str | None:
    key = _key(name)
    if key in _NAME_OR_LAST:
        return _NOM
    if key in _KIND:
        return _KIND[key]
    return "phone" if _PHONE_COLUMN.fullmatch(key) else None


@dataclass
class _Columns:
    """Where each field is in a row, from the header (None: no such column)."""

    names: list[str]
    id: int
    role: int
    #: The whole name, or a last name and a first name ("First Last").
    name: int | None
    last_name: int | None
    first_name: int | None
    unit: int | None
    language: int | None
    on_call: int | None
    backup: int | None
    tags: int | None
    #: (index, column name), in file order: the calling order of the numbers.
    phones: list[tuple[int, str]]
    #: Every column read, for the length and control character checks.
    read: list[int]


def _columns(names: list[str], line: int) -> _Columns:
    problems = _Problems()
    index: dict[str, int] = {}
    phones: list[tuple[int, str]] = []
    kinds = [_column_kind(n) for n in names]
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if kind == _NOM:
            kind = "last_name" if "first_name" in kinds else "name"
        if kind is None:
            continue  # HR exports carry many other columns: they are not ours to judge
        if kind in ("phone", "phones"):
            phones.append((i, name))
        elif kind in index:
            problems.add(line, f"columns {names[index[kind]]!r} and {name!r} both give the {kind}")
        else:
            index[kind] = i
    present = {*index, "phone"} if phones else set(index)
    if "last_name" in index:
        present.add("name")  # with or without a first name column
    found = ", ".join(repr(n) for n in names if n) or "none"
    for kind, aliases in _REQUIRED.items():
        if kind not in present:
            problems.add(
                line, f"missing column {kind!r} (any of: {aliases}); columns found: {found}"
            )
    if problems.total:
        raise problems.error()
    read = sorted({*index.values(), *(i for i, _ in phones)})
    return _Columns(
        names=names,
        id=index["id"],
        role=index["role"],
        name=index.get("name"),
        last_name=index.get("last_name"),
        first_name=index.get("first_name"),
        unit=index.get("unit"),
        language=index.get("language"),
        on_call=index.get("on_call"),
        backup=index.get("backup"),
        tags=index.get("tags"),
        phones=phones,
        read=read,
    )


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
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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
        raise _fail(line, f"{what}: re-export the file as CSV UTF-8") from None


def _physical_lines(lines: Iterator[str], first: int, problems: _Problems) -> Iterator[str]:
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


def _header(lines: Iterator[str]) -> tuple[int, str, list[str]]:
    """The first non-blank line: its number, the delimiter, the column names."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_CHARS:
            raise _fail(number, f"huge header: {len(line)} characters; is this a roster?")
        if "\x00" in line:
            raise _fail(number, "NUL byte: a binary or UTF-16 file? re-export it as CSV UTF-8")
        best: tuple[int, int, str, list[str]] | None = None
        # Decide from the header: the delimiter that finds more of our columns wins.
        for delimiter in (";", ",", "\t"):
            try:
                names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter))]
            except csv.Error as exc:
                raise _fail(number, f"CSV syntax error in the header: {exc}") from None
            score = (sum(_column_kind(n) is not None for n in names), len(names))
            if best is None or score > best[:2]:
                best = (*score, delimiter, names)
        assert best is not None
        return number, best[2], best[3]
    raise _fail(1, "empty file")


def parse_roster(data: bytes, *, default_language: str = "fr") -> list[Person]:
    """Parse an HR export (CSV, `;` or `,`, UTF-8); all of it, or RosterError listing every problem.

    Line numbers count the header as line 1, as a spreadsheet or an editor shows them.
    """
    if default_language not in LANGUAGES:
        raise ValueError(f"default_language must be one of {LANGUAGES}, got {default_language!r}")
    lines = iter(io.StringIO(_decode(data), newline=""))
    header_line, delimiter, names = _header(lines)
    parser = _Parser(_columns(names, header_line), default_language)
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
        raise _fail(header_line, "no staff in the roster (a header and no rows)")
    return people


class _Parser:
    """The rows of one file: people, and every problem met on the way."""

    def __init__(self, columns: _Columns, default_language: str) -> None:
        self.columns = columns
        self.default_language = default_language
        self.problems = _Problems()
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
            row = [f.strip() for f in raw]
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
        c = self.columns
        # Whole-row checks first, field by field only when they find something: rows are many.
        if max(map(len, row)) > MAX_FIELD_CHARS or _CONTROL.search("".join(row)):
            for i in c.read:
                if len(row[i]) > MAX_FIELD_CHARS:
                    self.add(line, i, f"{len(row[i])} characters ({MAX_FIELD_CHARS} at most)")
                elif _CONTROL.search(row[i]):
                    self.add(line, i, "a line break or control character")
            if self.problems.total > before:
                return None

        pid = row[c.id]
        if not pid:
            self.add(line, c.id, "missing id")
        elif pid in self.ids:
            self.add(line, c.id, f"duplicate id {pid!r} (first on line {self.ids[pid]})")
        else:
            self.ids[pid] = line

        name = row[c.name] if c.name is not None else ""
        if not name:
            first = row[c.first_name] if c.first_name is not None else ""
            last = row[c.last_name] if c.last_name is not None else ""
            name = f"{first} {last}".strip()
        if not name:
            self.add(line, c.name if c.name is not None else c.last_name, "missing name")

        role = _role(row[c.role])
        if not role:
            self.add(line, c.role, "missing role")
        elif not _ROLE.fullmatch(role):
            self.add(line, c.role, f"role {role!r} is longer than 40 characters")

        phones = self.phones(row, line)

        language = self.default_language
        if c.language is not None and row[c.language]:
            found = _LANGUAGE.get(_key(row[c.language]))
            if found is None:
                self.add(line, c.language, f"language {row[c.language]!r} is not fr or en")
            else:
                language = found

        on_call = False
        if c.on_call is not None:
            flag = _ON_CALL.get(_key(row[c.on_call]))
            if flag is None:
                self.add(line, c.on_call, f"{row[c.on_call]!r} is not 1/0, yes/no, oui/non or x")
            else:
                on_call = flag

        backup = row[c.backup] if c.backup is not None else ""
        if backup:
            self.backups.append((line, pid, backup))

        tags: frozenset[str] = frozenset()
        if c.tags is not None and row[c.tags]:
            tags = frozenset(t.lower() for t in _TAG_SEPARATORS.split(row[c.tags]) if t)
            for tag in sorted(t for t in tags if not _TAG.fullmatch(t)):
                self.add(line, c.tags, f"tag {tag!r}: only a-z, 0-9 and _, 40 at most")

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
        )

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
    """The roster as CSV (`;`, one `phones` column, |-separated) that parse_roster reads back."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for p in people:
        writer.writerow(
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
            )
        )
    return out.getvalue()


EXPORT_COLUMNS = ("id", "name", "role", "unit", "phones", "language", "on_call", "backup", "tags")
