"""What the phone lines say: pure text, checked word for word in French and English."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.voice import phrases, speech
from ivr.voice.prompts import TEXTS_DIR

T0 = datetime(2026, 3, 14, 14, 5, tzinfo=UTC).timestamp()


def report(**changes: Any) -> dict[str, Any]:
    """A campaign report shaped like `ivr.campaign.report.report()`'s, running for 25 minutes."""
    base: dict[str, Any] = {
        "campaign": "42",
        "name": "plan blanc",
        "status": "running",
        "drill": False,
        "total": 270,
        "available": 45,
        "unavailable": 30,
        "no_answer": 10,
        "busy": 2,
        "voicemail": 5,
        "failed": 1,
        "hung_up": 2,
        "cancelled": 3,
        "pending": 172,
        "in_flight": 25,
        "attempts": 140,
        "by_role": {
            "nurse": {"total": 100, "available": 12, "quota": 20, "met": False},
            "sage_femme": {"total": 5, "available": 2, "quota": 1, "met": True},
            "doctor": {"total": 10, "available": 3, "quota": None, "met": False},
        },
        "forecast": {"+30": 5, "+60": 7, "+90": 1},
        "started_at": T0,
        "finished_at": None,
    }
    base.update(changes)
    return base


def test_every_phrase_exists_in_every_language_with_the_same_placeholders() -> None:
    keys = set(phrases.FR)
    for language, table in phrases.PHRASES.items():
        assert set(table) == keys, language
        for key in keys:
            # A plural variant may spell its number out ("une personne"): {n} is optional there.
            optional = {"n"} if "." in key else set()
            expected = speech.placeholders(phrases.FR[key]) - optional
            assert speech.placeholders(table[key]) - optional == expected, (language, key)
    # Every plural has its "many" form, which the others fall back on.
    stems = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    assert all(f"{stem}.n" in keys for stem in stems)


def test_every_fixed_prompt_exists_in_every_language() -> None:
    texts = {p.stem: json.loads(p.read_text("utf-8")) for p in TEXTS_DIR.glob("*.json")}
    assert set(texts) == {"fr", "en"}
    assert texts["fr"].keys() == texts["en"].keys()
    for language, prompts in texts.items():
        assert all(isinstance(t, str) and t.strip() for t in prompts.values()), language


@pytest.mark.parametrize(
    ("n", "fr", "en"),
    [
        (0, "Aucune personne ne sera appelée.", "No one will be called."),
        (1, "Une personne va être appelée.", "1 person will be called."),
        (2, "2 personnes vont être appelées.", "2 people will be called."),
        (270, "270 personnes vont être appelées.", "270 people will be called."),
    ],
)
def test_staff_to_call_agrees_with_the_count(n: int, fr: str, en: str) -> None:
    assert speech.staff_to_call(n, "fr") == fr
    assert speech.staff_to_call(n, "en") == en


def test_unknown_language_falls_back_to_french() -> None:
    assert speech.staff_to_call(3, "de") == speech.staff_to_call(3, "fr")
    assert speech.staff_to_call(3) == "3 personnes vont être appelées."
    assert speech.clock(T0, "xx", UTC) == "14 heures 5"


@pytest.mark.parametrize(
    ("seconds", "fr", "en"),
    [
        (0, "moins d'une seconde", "less than a second"),
        (1, "une seconde", "1 second"),
        (45.9, "45 secondes", "45 seconds"),
        (90, "une minute 30 secondes", "1 minute and 30 seconds"),
        (3600, "une heure", "1 hour"),
        (3900, "une heure 5 minutes", "1 hour and 5 minutes"),
        (7559, "2 heures 5 minutes", "2 hours and 5 minutes"),  # seconds dropped past an hour
        (-5, "moins d'une seconde", "less than a second"),  # clocks a little apart
    ],
)
def test_durations(seconds: float, fr: str, en: str) -> None:
    assert speech.duration(seconds, "fr") == fr
    assert speech.duration(seconds, "en") == en


def test_durations_to_the_minute() -> None:
    assert speech.duration(59, "fr", minutes_only=True) == "moins d'une minute"
    assert speech.duration(59, "en", minutes_only=True) == "less than a minute"
    assert speech.duration(61, "fr", minutes_only=True) == "une minute"
    assert speech.duration(1500, "en", minutes_only=True) == "25 minutes"


@pytest.mark.parametrize(
    ("hour", "minute", "fr", "en"),
    [
        (14, 5, "14 heures 5", "2 oh 5 p.m."),
        (14, 30, "14 heures 30", "2:30 p.m."),
        (9, 0, "9 heures", "9 a.m."),
        (1, 15, "une heure 15", "1:15 a.m."),
        (0, 0, "minuit", "midnight"),
        (0, 5, "minuit 5", "12 oh 5 a.m."),
        (12, 0, "midi", "noon"),
        (12, 45, "midi 45", "12:45 p.m."),
        (23, 59, "23 heures 59", "11:59 p.m."),
    ],
)
def test_clock_times(hour: int, minute: int, fr: str, en: str) -> None:
    moment = datetime(2026, 3, 14, hour, minute, tzinfo=UTC)
    assert speech.clock(moment, "fr") == fr
    assert speech.clock(moment.timestamp(), "en", UTC) == en


def test_campaign_numbers_are_said_as_numbers_up_to_9999() -> None:
    assert speech.campaign_number("42") == "42"
    assert speech.campaign_number("9999") == "9999"
    assert speech.campaign_number("10000") == "1 0 0 0 0"
    assert speech.launched("42", "fr") == "L'alerte est lancée. Campagne numéro 42."
    assert speech.launched("12345", "en") == "The alert is launched. Campaign number 1 2 3 4 5."
    assert speech.stopped("7", "fr").startswith("La campagne numéro 7 est arrêtée.")
    assert speech.stopped("7", "en").startswith("Campaign number 7 is stopped.")


def test_scenario_menu_names_each_choice_then_its_key() -> None:
    choices = [("1", "plan blanc, afflux massif"), ("2", "cyberattaque")]
    assert speech.scenario_menu(choices, "fr") == (
        "plan blanc, afflux massif : touche 1. cyberattaque : touche 2."
    )
    assert speech.scenario_menu(choices, "en", drill_key="9").endswith(
        "cyberattaque: press 2. Drill: press 9."
    )


def test_launch_summary_names_the_scenario_and_the_count() -> None:
    assert speech.launch_summary("afflux massif", 270, "fr") == (
        "Alerte afflux massif. 270 personnes vont être appelées."
    )
    assert speech.launch_summary("cyber attack", 1, "en", drill=True) == (
        "Drill: cyber attack. 1 person will be called."
    )


def test_campaign_choice_numbers_campaigns_from_1() -> None:
    text = speech.campaign_choice([("42", "plan blanc"), ("43", " ")], "fr")
    assert text == "Pour la campagne 42, plan blanc, tapez 1. Pour la campagne 43, tapez 2."
    assert speech.campaign_choice([("42", "")], "en") == "For campaign 42, press 1."


def test_menus_refuse_what_one_key_cannot_choose() -> None:
    with pytest.raises(ValueError, match="at most 9"):
        speech.campaign_choice([(str(i), "") for i in range(10)], "fr")
    with pytest.raises(ValueError, match="at least one"):
        speech.role_menu([], "fr")
    assert speech.role_menu([("1", "infirmiers"), ("2", "médecins")], "fr") == (
        "Pour infirmiers, tapez 1. Pour médecins, tapez 2."
    )


def test_quota_phrases() -> None:
    assert speech.quota_now("infirmiers", 20, "fr") == "Quota pour infirmiers : 20 personnes."
    assert speech.quota_now("nurses", 1, "en") == "Quota for nurses: 1 person."
    assert speech.quota_enter("infirmiers", "fr") == (
        "Entrez le nouveau quota pour infirmiers, puis la touche dièse."
    )
    nurses = speech.quota_enter("nurses", "en")
    assert nurses == "Enter the new quota for nurses, then the hash key."
    assert speech.extended(0, "fr") == "Il n'y a personne d'autre à appeler."
    assert speech.extended(40, "en").endswith("40 more people will be called.")


def test_summary_of_a_running_campaign_in_french() -> None:
    text = speech.summary(
        report(), "fr", now=T0 + 25 * 60 + 30, role_labels={"nurse": "infirmiers"}, tz=UTC
    )
    assert text == (
        "Campagne numéro 42, plan blanc. "
        "Lancée à 14 heures 5, il y a 25 minutes. "
        # called: 45 + 30 + 20 not reached + 25 in flight; the 3 cancelled were not called.
        "120 personnes appelées sur 270. "
        "45 personnes disponibles. 30 personnes indisponibles. 20 personnes injoignables. "
        "Infirmiers : 12 disponibles sur 20 demandés. "
        "Sage femme : 2 disponibles sur un demandé. Objectif atteint. "
        "Arrivées prévues : 5 dans les 30 minutes, 12 dans l'heure."
    )
    assert "doctor" not in text  # no quota, nothing to say


def test_summary_of_a_running_drill_in_english() -> None:
    text = speech.summary(
        report(drill=True, name=""), "en", now=T0 + 3900, role_labels={"nurse": "nurses"}, tz=UTC
    )
    assert text == (
        "Campaign number 42. This is a drill. "
        "Started at 2 oh 5 p.m., 1 hour and 5 minutes ago. "
        "120 people called, out of 270. "
        "45 people available. 30 people unavailable. 20 people unreachable. "
        "Nurses: 12 available of 20 requested. "
        "Sage femme: 2 available of 1 requested. Target reached. "
        "Expected arrivals: 5 within 30 minutes, 12 within the hour."
    )


def test_summary_at_the_start_says_zero_as_none() -> None:
    zero = {k: 0 for k in ("available", "unavailable", *speech.NOT_REACHED, "cancelled")}
    fresh = report(**zero, in_flight=0, forecast={"+30": 0, "+60": 0, "+90": 0}, by_role={})
    fr = speech.summary(fresh, "fr", now=T0 + 20, tz=UTC)
    assert "il y a moins d'une minute" in fr
    assert "Aucune personne appelée sur 270. Aucune personne disponible." in fr
    assert "Aucune personne indisponible. Aucune personne injoignable." in fr
    assert "Arrivées" not in fr and "arrivée" not in fr  # nobody available: nothing to expect
    en = speech.summary(fresh, "en", now=T0 + 20, tz=UTC)
    assert "No one called yet, out of 270. No one available." in en


def test_summary_says_when_nobody_gave_an_arrival_time() -> None:
    silent = report(forecast={"+30": 0, "+60": 0, "+90": 0})
    text = speech.summary(silent, "fr", now=T0, tz=UTC)
    assert text.endswith("Aucune heure d'arrivée annoncée pour l'instant.")
    late = speech.summary(report(forecast={"+30": 0, "+60": 0, "+90": 4}), "en", now=T0, tz=UTC)
    assert late.endswith("Expected arrivals: none within 30 minutes, none within the hour.")


def test_summary_of_a_finished_or_stopped_campaign() -> None:
    done = report(status="done", finished_at=T0 + 3900)
    assert "Terminée, après une heure 5 minutes." in speech.summary(done, "fr", now=T0 + 9999)
    assert "Finished, after 1 hour and 5 minutes." in speech.summary(done, "en", now=T0)
    assert "Terminée." in speech.summary(report(status="done"), "fr", now=T0)
    stopped = speech.summary(report(status="stopped"), "fr", now=T0 + 120, tz=UTC)
    assert "Arrêtée. Lancée à 14 heures 5, il y a 2 minutes." in stopped
    assert "il y a" not in speech.summary(report(started_at=None), "fr", now=T0)


def test_role_labels_fall_back_to_the_id_with_spaces() -> None:
    assert speech.role_label("sage_femme") == "sage femme"
    assert speech.role_label("ide", {"ide": "infirmiers"}) == "infirmiers"
    assert speech.role_label("mar", {"ide": "infirmiers"}) == "mar"
