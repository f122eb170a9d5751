"""The roster CSV's header: which column gives what (French and English names, the way HR
exports write them), and the problems of a file, reported by line.
"""

from __future__ import annotations

import csv
import functools
import heapq
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from ivr.staff.roster import RosterError

#: Longest line read; a longer header is refused.
MAX_ROW_CHARS = 10_000
#: A RosterError lists this many problems at most (it counts them all).
MAX_PROBLEMS = 1000


class Problems:
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


def fail(line: int, reason: str) -> RosterError:
    problems = Problems()
    problems.add(line, reason)
    return problems.error()


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
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
    "sms": "sms sms_number numéro_sms mobile_sms portable_sms",
    "email": "email e-mail mail courriel adresse_mail adresse_électronique",
}
_KIND = {fold(alias): kind for kind, names in _ALIASES.items() for alias in names.split()}
# "Nom" or "Name" is the last name beside a "Prénom" column, the whole name otherwise.
NOM = "nom"
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


def column_kind(name: str) -> str | None:
    key = fold(name)
    if key in _NAME_OR_LAST:
        return NOM
    if key in _KIND:
        return _KIND[key]
    return "phone" if _PHONE_COLUMN.fullmatch(key) else None


@dataclass
class Columns:
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
    #: Where SMS go when it is not the first mobile among the phones.
    sms: int | None
    email: int | None
    #: (index, column name), in file order: the calling order of the numbers.
    phones: list[tuple[int, str]]
    #: Every column read, for the length and control character checks.
    read: list[int]


def columns(names: list[str], line: int) -> Columns:
    problems = Problems()
    index: dict[str, int] = {}
    phones: list[tuple[int, str]] = []
    kinds = [column_kind(n) for n in names]
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if kind == NOM:
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
    return Columns(
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
        sms=index.get("sms"),
        email=index.get("email"),
        phones=phones,
        read=read,
    )


def header(lines: Iterator[str]) -> tuple[int, str, list[str]]:
    """The first non-blank line: its number, the delimiter, the column names."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_CHARS:
            raise fail(number, f"huge header: {len(line)} characters; is this a roster?")
        if "\x00" in line:
            raise fail(number, "NUL byte: a binary or UTF-16 file? re-export it as CSV UTF-8")
        best: tuple[int, int, str, list[str]] | None = None
        # Decide from the header: the delimiter that finds more of our columns wins (not
        # csv.Sniffer, which guesses from character counts: a header "Nom, prénom;..." fools it).
        for delimiter in (";", ",", "\t"):
            try:
                names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter))]
            except csv.Error as exc:
                raise fail(number, f"CSV syntax error in the header: {exc}") from None
            score = (sum(column_kind(n) is not None for n in names), len(names))
            if best is None or score > best[:2]:
                best = (*score, delimiter, names)
        assert best is not None
        return number, best[2], best[3]
    raise fail(1, "empty file")
