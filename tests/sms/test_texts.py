"""SMS replies read, texts built, segments counted: pure logic."""

from __future__ import annotations

import pytest

from ivr.campaign.spec import CampaignSpec
from ivr.outcomes import Outcome
from ivr.sms import encoding, replies, texts

YES, NO = Outcome.AVAILABLE, Outcome.UNAVAILABLE


@pytest.mark.parametrize(
    ("text", "outcome", "minutes"),
    [
        ("1", YES, None), (" 1 ", YES, None), ("oui", YES, None), ("Oui !", YES, None),
        ("YES", YES, None), ("1 20", YES, 20), ("1,20", YES, 20), ("1 20 min", YES, 20),
        ("oui 45mn", YES, 45), ("2", NO, None), ("non", NO, None), ("Non.", NO, None),
        ("no", NO, None), ("pas dispo", NO, None), ("Disponible", YES, None),
    ],
)  # fmt: skip
def test_answers_are_read_whatever_the_case_accents_and_spaces(
    text: str, outcome: Outcome, minutes: int | None
) -> None:
    assert replies.parse(text) == replies.Reply(outcome, minutes)


@pytest.mark.parametrize("text", ["", "3", "12", "ok", "2 20", "1 999", "oui non", "1 2 3", "?"])
def test_anything_else_is_no_answer(text: str) -> None:
    assert replies.parse(text) is None


def test_accents_are_folded() -> None:
    assert replies.parse("ÔUÎ") == replies.Reply(YES)


def test_alert_text_carries_message_how_to_answer_and_callback() -> None:
    spec = CampaignSpec(
        messages={"fr": "Plan blanc déclenché.", "en": "White plan."},
        callback_number="0140000000",
        drill=True,
    )
    fr = texts.alert(spec, "fr")
    assert fr.startswith("EXERCICE. Plan blanc déclenché.\nRépondez 1")
    assert fr.endswith("Ou rappelez le 0140000000.")
    en = texts.alert(spec, "en")
    assert "White plan." in en and "Reply 1 if available" in en
    # A language without its own text gets the French message with the English instructions.
    only_fr = CampaignSpec(messages={"fr": "Plan blanc."})
    assert texts.alert(only_fr, "en").startswith("Plan blanc.\nReply 1")
    assert "plan blanc" in texts.alert(CampaignSpec(messages={}, recordings={"fr": "a"}), "fr")


def test_fixed_texts_are_gsm_so_a_short_alert_is_one_sms() -> None:
    # One character outside GSM 03.38 (ê, ç, «) would make every SMS UCS-2: 70 characters.
    for language in ("fr", "en"):
        for name, text in texts.texts(language).items():
            assert encoding.segments(text)[0] == "gsm", (language, name)
    spec = CampaignSpec(messages={"fr": "Plan blanc : venez."}, callback_number="0140000000")
    assert encoding.segments(texts.alert(spec, "fr")) == ("gsm", 1)


def test_both_languages_have_the_same_texts() -> None:
    assert texts.texts("fr").keys() == texts.texts("en").keys()
    assert texts.answer("en", "available", 20).endswith("there in 20 min.")
    assert texts.already("fr", "unavailable").endswith("pas disponible.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, ("gsm", 1)),
        ("a" * 161, ("gsm", 2)),
        ("a" * 306, ("gsm", 2)),
        ("a" * 307, ("gsm", 3)),
        ("Réunion à l'hôpital", ("ucs2", 1)),  # ô is not GSM
        ("Réunion à l'hopital, été", ("gsm", 1)),  # é, à are
        ("€" * 80, ("gsm", 1)),  # the euro sign takes two septets
        ("€" * 81, ("gsm", 2)),
        ("ç" * 70, ("ucs2", 1)),
        ("ç" * 71, ("ucs2", 2)),
        ("🚑" * 35, ("ucs2", 1)),  # an emoji is two UTF-16 units
        ("🚑" * 36, ("ucs2", 2)),
    ],
)
def test_segments(text: str, expected: tuple[str, int]) -> None:
    assert encoding.segments(text) == expected
