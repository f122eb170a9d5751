"""Outcomes: the one place that turns what Asterisk and the dialplan said into a result."""

from __future__ import annotations

import pytest

from ivr.outcomes import Outcome
from ivr.pbx.causes import answered, from_journal, not_answered, parse_journal


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (0, Outcome.FAILED),
        (1, Outcome.NO_ANSWER),
        (3, Outcome.NO_ANSWER),
        (5, Outcome.BUSY),
        (8, Outcome.FAILED),
    ],
)
def test_not_answered_by_reason(reason: int, expected: Outcome) -> None:
    outcome, detail = not_answered(reason, None)
    assert outcome is expected
    assert detail


def test_unknown_reason_is_failed_and_says_which() -> None:
    assert not_answered(2, None) == (Outcome.FAILED, "reason 2")


@pytest.mark.parametrize(
    ("cause", "expected", "detail"),
    [
        (1, Outcome.FAILED, "unallocated number"),
        (17, Outcome.BUSY, "busy"),
        (19, Outcome.NO_ANSWER, "no answer"),
        (21, Outcome.BUSY, "declined"),
        (28, Outcome.FAILED, "invalid number format"),
        (34, Outcome.FAILED, "congestion"),
    ],
)
@pytest.mark.parametrize("reason", [0, 1, 3, 5, 8, 99])
def test_cause_overrides_reason(reason: int, cause: int, expected: Outcome, detail: str) -> None:
    assert not_answered(reason, cause) == (expected, detail)


@pytest.mark.parametrize("cause", [None, 0, 16, 127])
def test_cause_without_meaning_falls_back_to_reason(cause: int | None) -> None:
    assert not_answered(5, cause) == (Outcome.BUSY, "busy")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("1", Outcome.AVAILABLE),
        ("2", Outcome.UNAVAILABLE),
        ("V", Outcome.VOICEMAIL),
        ("Q", Outcome.CANCELLED),
        (None, Outcome.HUNG_UP),
        ("", Outcome.HUNG_UP),
        ("3", Outcome.HUNG_UP),
    ],
)
def test_answered(key: str | None, expected: Outcome) -> None:
    outcome, detail = answered(key)
    assert outcome is expected
    assert detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("K1", Outcome.AVAILABLE),
        ("K2", Outcome.UNAVAILABLE),
        ("K1E30", Outcome.AVAILABLE),
        ("V", Outcome.VOICEMAIL),
        ("Q", Outcome.CANCELLED),
        ("T", Outcome.HUNG_UP),
        ("F3", Outcome.NO_ANSWER),
        ("F5", Outcome.BUSY),
        ("F8", Outcome.FAILED),
        ("F0", Outcome.FAILED),
    ],
)
def test_from_journal(value: str, expected: Outcome) -> None:
    result = from_journal(value)
    assert result is not None
    assert result[0] is expected


def test_from_journal_unreadable_failure_code_names_it() -> None:
    assert from_journal("Fx") == (Outcome.FAILED, "journal 'Fx'")


@pytest.mark.parametrize("value", ["A", None, ""])
def test_from_journal_not_final(value: str | None) -> None:
    assert from_journal(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("K1E30", ("1", 30)),
        ("K2", ("2", None)),
        ("K1Exx", ("1", None)),
        ("V", ("V", None)),
        ("T", ("", None)),
        ("A", (None, None)),
        ("F3", (None, None)),
    ],
)
def test_parse_journal(value: str, expected: tuple[str | None, int | None]) -> None:
    assert parse_journal(value) == expected


def test_reached_only_when_a_person_answered_with_a_key() -> None:
    assert {o for o in Outcome if o.reached} == {Outcome.AVAILABLE, Outcome.UNAVAILABLE}


def test_outcome_values_are_the_stored_strings() -> None:
    assert Outcome("no_answer") is Outcome.NO_ANSWER
    assert f"{Outcome.HUNG_UP}" == "hung_up"
