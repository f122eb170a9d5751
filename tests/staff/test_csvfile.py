"""The roster's CSV: HR exports parsed all or nothing, and exported back."""

from __future__ import annotations

import csv

import pytest

from ivr.errors import IvrError
from ivr.staff import columns, csvfile
from ivr.staff.csvfile import export_csv, parse_roster
from ivr.staff.roster import Person, RosterError

FRENCH = (
    "\ufeffMatricule;Nom;Prénom;Fonction;Service;Téléphone portable;Tél. domicile;Téléphone 3;"
    "Date d'entrée;Langue;Astreinte;Suppléant;Tags\r\n"
    "A001;Lefèvre;Hélène;Infirmière;Réanimation;06 12 34 56 78;01.23.45.67.89;;"
    "01/02/2010;Français;oui;A002;crisis_cell|bloc\r\n"
    "\r\n"
    "A002;N'Diaye;Zoé;Médecin;Urgences;+33 6 98 76 54 32;;07-11-22-33-44;"
    "03/04/2015;anglais;;;\r\n"
    "A003;Da Silva;Loïc;Sage-femme;Maternité;06\u00a011\u00a022\u00a033\u00a044;;;;;x;;;\r\n"
)

ENGLISH = (
    "Staff ID,Full Name,Role,Unit,Phone1,Phone2,Language,On call,Backup,Tags\n"
    "N-17,Jane Doe,Nurse,ER,+44 20 7946 0000,07700 900123,en,yes,D-2,\n"
    'D-2,"Smith, John",Anaesthetist,Theatres,(0161) 496 0000,,,false,,crisis_cell\n'
)

HEADER = "id;name;role;phone\n"


def problems(data: str | bytes, **kwargs: str) -> list[tuple[int, str]]:
    """The problems parse_roster reports for `data`, which must be refused."""
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(RosterError) as info:
        parse_roster(raw, **kwargs)
    assert info.value.problems, "a RosterError always lists its problems"
    return info.value.problems


def only(data: str | bytes) -> tuple[int, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


# -- parsing ------------------------------------------------------------------------------


def test_french_hr_export() -> None:
    people = parse_roster(FRENCH.encode())
    assert people == [
        Person(
            id="A001",
            name="Hélène Lefèvre",
            role="infirmiere",
            unit="Réanimation",
            phones=("0612345678", "0123456789"),
            language="fr",
            on_call=True,
            backup="A002",
            tags=frozenset({"crisis_cell", "bloc"}),
        ),
        Person(
            id="A002",
            name="Zoé N'Diaye",
            role="medecin",
            unit="Urgences",
            phones=("+33698765432", "0711223344"),
            language="en",
        ),
        # No-break spaces in the number, empty trailing cells: as a spreadsheet saves them.
        Person(
            id="A003",
            name="Loïc Da Silva",
            role="sage_femme",
            unit="Maternité",
            phones=("0611223344",),
            on_call=True,
        ),
    ]


def test_english_export_with_commas() -> None:
    jane, john = parse_roster(ENGLISH.encode(), default_language="en")
    assert jane == Person(
        id="N-17",
        name="Jane Doe",
        role="nurse",
        unit="ER",
        phones=("+442079460000", "07700900123"),
        language="en",
        on_call=True,
        backup="D-2",
    )
    assert (john.name, john.role, john.phones) == ("Smith, John", "anaesthetist", ("01614960000",))
    assert (john.language, john.on_call, john.tags) == ("en", False, frozenset({"crisis_cell"}))


def test_phones_column_quoted_semicolon_and_duplicates() -> None:
    data = (
        "ID;NOM PRÉNOM;MÉTIER;PHONES;Mobile\n"
        '7;"Durand; Marie";IDE;06 12 34 56 78 | 01 02 03 04 05;06.12.34.56.78\n'
    )
    (person,) = parse_roster(data.encode())
    assert person.name == "Durand; Marie"
    # The mobile repeats the first number: called once.
    assert person.phones == ("0612345678", "0102030405")


def test_name_beside_a_first_name_is_the_last_name() -> None:
    data = "id,Name,First name,role,mobile\n1,Doe,Jane,nurse,0612345678\n"
    assert parse_roster(data.encode())[0].name == "Jane Doe"


def test_delimiter_from_header() -> None:
    # Commas in the header's names do not fool it: ';' finds more known columns.
    data = 'id;nom;fonction;"tel, portable"\n1;A, B;nurse;0612345678\n'
    assert parse_roster(data.encode())[0].name == "A, B"


# -- refused files: every kind of problem, with its line --------------------------------


@pytest.mark.parametrize(
    "data, line, reason",
    [
        ("id;nom;téléphone\n1;A;06\n", 1, "missing column 'role'"),
        ("id;nom;fonction\n1;A;nurse\n", 1, "missing column 'phone'"),
        ("matricule;fonction;tel\n1;nurse;06\n", 1, "missing column 'name'"),
        ("nom;fonction;tel\nA;nurse;06\n", 1, "missing column 'id'"),
        ("id;name;nom;role;tel\n1;A;A;nurse;06\n", 1, "both give the name"),
        (HEADER + ";A;nurse;0612345678\n", 2, "missing id"),
        (HEADER + "1;;nurse;0612345678\n", 2, "missing name"),
        (HEADER + "1;A;;0612345678\n", 2, "missing role"),
        (HEADER + "1;A;nurse;\n", 2, "no phone number"),
        (HEADER + "1;A;nurse;06&12\n", 2, "column 'phone': phone number '06&12'"),
        (HEADER + '1;A;nurse;"06 12;34"\n', 2, "';'"),
        (HEADER + "1;A;nurse;0612345678,1234\n", 2, "','"),
        ("id;name;role;phones\n1;A;nurse;1|2|3|4|5|6\n", 2, "6 phone numbers (5 at most)"),
        ("id;name;role;tel;langue\n1;A;nurse;06;de\n", 2, "language 'de' is not fr or en"),
        ("id;name;role;tel;astreinte\n1;A;nurse;06;maybe\n", 2, "'maybe' is not 1/0"),
        ("id;name;role;tel;backup\n1;A;nurse;06;9\n", 2, "backup '9' is not in the roster"),
        ("id;name;role;tel;backup\n1;A;nurse;06;1\n", 2, "'1' is their own backup"),
        ("id;name;role;tel;tags\n1;A;nurse;06;crise-blanche\n", 2, "tag 'crise-blanche'"),
        (HEADER + "1;A;nurse;06;extra\n", 2, "5 fields where the header has 4"),
        (HEADER + "1;A;nurse\n", 2, "3 fields where the header has 4"),
        (HEADER + f"1;{'x' * 201};nurse;06\n", 2, "column 'name': 201 characters (200 at most)"),
        (HEADER + f"1;A;nurse;06;{'x' * 10_001}\n", 2, "huge row"),
        (HEADER + '1;"A\nB";nurse;06\n', 2, "line break"),
        (HEADER + f'1;"{"x" * 6000}\n{"y" * 6000}";nurse;06\n', 2, "huge row: a field"),
        (HEADER + f'1;"{"x" * 6000}\n";"{"y" * 6000}";06\n', 2, "huge row: more than"),
        (HEADER + '1;"A' + f"{'x' * 9000}\n" * 3 + "2;B;nurse;06\n", 2, 'quote (") left open?'),
        (HEADER + "1;A\x00;nurse;06\n", 2, "NUL byte"),
        (HEADER + '1;"A"B;nurse;06\n', 2, "CSV syntax error"),
        (HEADER + '1;"A;nurse;06\n2;B;nurse;07\n', 2, "CSV syntax error: unexpected end of data"),
        (HEADER, 1, "no staff in the roster"),
        (HEADER + "\n;;;\n", 1, "no staff in the roster"),
        ("", 1, "empty file"),
        ("\ufeff\r\n \r\n", 1, "empty file"),
    ],
)
def test_refused(data: str, line: int, reason: str) -> None:
    found = problems(data)
    assert any(at == line and reason in why for at, why in found), found


def test_duplicate_id_names_the_first_line() -> None:
    data = HEADER + "A1;A;nurse;0612345678\nA2;B;nurse;0612345679\n\nA1;C;nurse;0612345670\n"
    assert only(data) == (5, "column 'id': duplicate id 'A1' (first on line 2)")


def test_missing_column_lists_the_columns_found() -> None:
    line, reason = only("Matricule;Nom;Téléphone\n1;A;06\n")
    assert line == 1
    assert "fonction" in reason and "'Matricule', 'Nom', 'Téléphone'" in reason


def test_bad_number_names_its_column_and_reason() -> None:
    data = "id;name;role;mobile;domicile\n1;A;nurse;0612345678;01 23 & 45\n"
    line, reason = only(data)
    assert line == 2
    assert reason.startswith("column 'domicile': phone number '01 23 & 45' holds characters")


def test_latin1_file() -> None:
    data = (HEADER + "1;Marie;nurse;06\n2;Hélène;nurse;07\n").encode("latin-1")
    line, reason = only(data)
    assert line == 3
    assert "not UTF-8 (byte 0xE9" in reason and "re-export the file as CSV UTF-8" in reason


def test_utf16_file() -> None:
    line, reason = only((HEADER + "1;A;nurse;06\n").encode("utf-16"))
    assert line == 1 and "UTF-16" in reason and "re-export the file as CSV UTF-8" in reason


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "MAX_ROWS", 3)
    rows = "".join(f"{i};A;nurse;06\n" for i in range(5))
    assert only(HEADER + rows) == (5, "more than 3 rows: is this the right file?")


def test_line_numbers_after_a_quoted_line_break() -> None:
    data = HEADER + '1;"A\nB";nurse;06\n2;B;nurse;06&\n'
    assert [line for line, _ in problems(data)] == [2, 4]


def test_every_bad_row_at_once() -> None:
    good = "".join(f"G{i};A;nurse;0612345678\n" for i in range(50))
    bad = "".join(f"B{i};A;nurse;06&{i}\n" for i in range(1500))
    data = HEADER + good + bad + "G1;dup;nurse;0612345678\n"
    with pytest.raises(RosterError) as info:
        parse_roster(data.encode())
    error = info.value
    assert error.error_id == "roster_error" and error.exit_code == 2
    assert isinstance(error, IvrError)
    assert str(error).startswith("roster: 1501 problems; first: line 52: column 'phone'")
    assert len(error.problems) == columns.MAX_PROBLEMS
    assert [line for line, _ in error.problems] == list(range(52, 52 + columns.MAX_PROBLEMS))


def test_csv_field_limit_restored() -> None:
    limit = csv.field_size_limit()
    parse_roster(FRENCH.encode())
    problems(HEADER + "1;A;nurse;06&\n")
    assert csv.field_size_limit() == limit


def test_problems_of_one_row_all_reported() -> None:
    data = "id;name;role;tel;langue\n1;;;06&;xx\n"
    reasons = [why for _, why in problems(data)]
    assert len(reasons) == 4, reasons
    assert any("missing name" in r for r in reasons) and any("'&'" in r for r in reasons)


# -- CSV round trip ---------------------------------------------------------------------


def test_export_then_parse_gives_the_same_people() -> None:
    people = parse_roster(FRENCH.encode()) + parse_roster(ENGLISH.encode())
    people.append(Person("Q;1", 'Jo "Q" Smith', "nurse", "A;B", ("*31#0612345678",), "en"))
    text = export_csv(people)
    assert text.startswith("id;name;role;unit;phones;language;on_call;backup;tags;sms;email\r\n")
    assert parse_roster(text.encode()) == people


def test_sms_column_is_validated_and_exported() -> None:
    from ivr.staff.csvfile import export_csv

    good = "id;name;role;mobile;domicile;sms\nA1;X;nurse;0611000001;0111000001;07 11 00 00 09\n"
    (person,) = parse_roster(good.encode())
    assert person.sms == "0711000009" and person.sms_number() == "0711000009"
    assert parse_roster(export_csv([person]).encode()) == [person]
    # Without an sms column: the first mobile number, wherever it is among the phones.
    home = b"id;name;role;domicile;mobile\nA1;X;nurse;0111000001;0611000001\n"
    (home_first,) = parse_roster(home)
    assert home_first.sms_number() == "0611000001"
    with pytest.raises(RosterError) as bad:
        parse_roster(b"id;name;role;mobile;sms\nA1;X;nurse;0611000001;06&11\n")
    assert bad.value.problems[0][0] == 2 and "'&'" in bad.value.problems[0][1]


def test_email_column_is_checked_and_exported() -> None:
    data = "matricule;nom;fonction;portable;courriel\nA1;X;nurse;0611000001;claire.m@chu-x.fr\n"
    (person,) = parse_roster(data.encode())
    assert person.email == "claire.m@chu-x.fr"
    assert parse_roster(export_csv([person]).encode()) == [person]
    with pytest.raises(RosterError) as bad:
        parse_roster(b"id;name;role;mobile;email\nA1;X;nurse;0611000001;a@b\\r\\nBcc: x@y.fr\n")
    assert "is not a mail address" in bad.value.problems[0][1]
