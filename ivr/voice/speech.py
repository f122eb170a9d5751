"""What the phone lines say out loud: counts, times, durations and summaries, in French and English.

Pure functions from data to one string for `Speaker.render()`; no I/O. French is the default and
any unknown language falls back to it.

All wording lives in `ivr.voice.phrases.PHRASES`, one table per language, so a translator edits
one place. The tables are Python rather than JSON (as `ivr/prompts/*.json` are) because they
are templates, not finished sentences: each has `{placeholders}` and plural variants that the
tests check against the code that fills them, and a typo must fail at import or in CI, not on
a director's phone.

Plurals: a key with variants is written `key.0` (zero: "aucune"/"no one"), `key.1` (one) and
`key.n` (two or more); `key.0` is optional and falls back to `key.n`. Not gettext and Babel's
CLDR rules: CLDR puts French 0 with 1 ("one"), where a phone line says "aucune personne", not
"0 personne"; and two languages need no catalogue toolchain. Numbers are left as digits
(espeak-ng reads them well) except where it reads them wrong: "1 personne" comes out as "un
personne" and "14 heures 05" as "zéro cinq", so the tables say "une personne" and the code
writes "14 heures 5"; English minutes under ten are said "two oh five", not "two zero five".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from ivr.outcomes import ANSWERS, Outcome
from ivr.voice.phrases import EN, PHRASES

#: The language used when the one asked for has no table.
DEFAULT_LANGUAGE = "fr"
#: Most choices a one-key menu can offer (keys 1 to 9).
MAX_CHOICES = 9
#: Campaign numbers up to this are said as a number ("quarante-deux"); longer ones digit by digit.
MAX_SPOKEN_NUMBER = 9999
#: Outcomes counted as "not reached" in a summary.
NOT_REACHED = tuple(o for o in Outcome if not o.reached and o is not Outcome.CANCELLED)


def _table(language: str) -> dict[str, str]:
    return PHRASES.get(language) or PHRASES[DEFAULT_LANGUAGE]


def _say(language: str, phrase: str, /, **values: Any) -> str:
    return _table(language)[phrase].format(**values)


def _count(language: str, phrase: str, n: int, /, **values: Any) -> str:
    """The `phrase` variant agreeing with `n` (see the module docstring for the variants)."""
    table = _table(language)
    if n == 0 and f"{phrase}.0" in table:
        variant = f"{phrase}.0"
    elif n == 1 and f"{phrase}.1" in table:
        variant = f"{phrase}.1"
    else:
        variant = f"{phrase}.n"
    return table[variant].format(n=n, **values)


def campaign_number(cid: str) -> str:
    """How a campaign id is said: "42" as a number, "12345" (or a non-number) digit by digit."""
    if cid.isdigit() and int(cid) <= MAX_SPOKEN_NUMBER:
        return str(int(cid))
    return " ".join(cid)


def duration(
    seconds: float, language: str = DEFAULT_LANGUAGE, *, minutes_only: bool = False
) -> str:
    """A length of time as said on the phone: "une heure 5 minutes", "2 hours and 5 minutes".

    Seconds are said under an hour only, and never with `minutes_only` (where anything under
    a minute is "moins d'une minute"). Fractions are dropped, not rounded up.
    """
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours or minutes_only:
        secs = 0
    parts = [
        _count(language, unit, value)
        for unit, value in (("hours", hours), ("minutes", minutes), ("seconds", secs))
        if value
    ]
    if not parts:
        return _say(language, "under_a_minute" if minutes_only else "under_a_second")
    return _say(language, "and").join(parts)


def clock(
    when: float | datetime, language: str = DEFAULT_LANGUAGE, tz: tzinfo | None = None
) -> str:
    """A time of day as said on the phone: "14 heures 5", "2 oh 5 p.m.", "minuit", "noon".

    `when` is epoch seconds (or a datetime), shown in `tz` (the local time zone by default).
    French uses the 24-hour clock, English the 12-hour one.
    """
    if isinstance(when, datetime):
        moment = when.astimezone(tz) if tz is not None else when
    else:
        moment = datetime.fromtimestamp(when, tz)
    hour, minute = moment.hour, moment.minute
    if _table(language) is EN:
        return _clock_en(hour, minute)
    if hour == 0:
        head = _say(language, "midnight")
    elif hour == 12:
        head = _say(language, "noon")
    else:
        head = _count(language, "clock_hour", hour)
    return f"{head} {minute}" if minute else head


def _clock_en(hour: int, minute: int) -> str:
    if minute == 0 and hour in (0, 12):
        return EN["midnight"] if hour == 0 else EN["noon"]
    suffix = "a.m." if hour < 12 else "p.m."
    h12 = hour % 12 or 12
    if minute == 0:
        return f"{h12} {suffix}"
    # espeak-ng says "2:05" as "two zero five"; "oh" is how people say it.
    said = f"{h12} oh {minute}" if minute < 10 else f"{h12}:{minute:02d}"
    return f"{said} {suffix}"


def staff_to_call(n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """Before launching: "270 personnes vont être appelées." / "270 people will be called." """
    return _count(language, "staff_to_call", n)


def launch_summary(
    label: str, n: int, language: str = DEFAULT_LANGUAGE, drill: bool = False
) -> str:
    """Before launching, what will start: "Alerte afflux massif. 270 personnes vont être
    appelées." (a drill: "Exercice, afflux massif. ...")."""
    head = _say(language, "launch_drill" if drill else "launch_scenario", label=label)
    return f"{head} {staff_to_call(n, language)}"


def launched(cid: str, language: str = DEFAULT_LANGUAGE) -> str:
    """After launching: "L'alerte est lancée. Campagne numéro 42." """
    return _say(language, "launched", campaign=campaign_number(cid))


def recall_intro(cid: str, event: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The director's call-back, before the summary: "Ici le serveur d'alerte. Campagne numéro
    42 : quotas atteints." (`event`: quota..., or end)."""
    phrase = "recall_quota" if event.startswith("quota") else "recall_end"
    return _say(language, phrase, campaign=campaign_number(cid))


def call_back(number: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Left on answering machines after the message: the number to call back, digit by digit."""
    return _say(language, "call_back", number=" ".join(number))


def stopped(cid: str, language: str = DEFAULT_LANGUAGE) -> str:
    """After a stop by phone: "La campagne numéro 42 est arrêtée. Les appels en cours ..." """
    return _say(language, "stopped", campaign=campaign_number(cid))


def _menu(choices: Sequence[tuple[str, str]], language: str, phrase: str = "choice") -> list[str]:
    if not choices:
        raise ValueError("a menu needs at least one choice")
    if len(choices) > MAX_CHOICES:
        raise ValueError(f"{len(choices)} choices: a one-key menu offers at most {MAX_CHOICES}")
    return [_say(language, phrase, label=label, key=key) for key, label in choices]


def scenario_menu(
    scenarios: Sequence[tuple[str, str]],
    language: str = DEFAULT_LANGUAGE,
    *,
    drill_key: str | None = None,
) -> str:
    """From (key, label) pairs: "Plan blanc : touche 1. ... Exercice : touche 9." (shorter than
    the other menus' "Pour ..., tapez 1.": it is the one every director hears in a hurry).

    The drill choice is offered only when `drill_key` is given.
    """
    sentences = _menu(scenarios, language, "scenario_choice")
    if drill_key is not None:
        sentences.append(_say(language, "drill_choice", key=drill_key))
    return " ".join(sentences)


def campaign_choice(campaigns: Sequence[tuple[str, str]], language: str = DEFAULT_LANGUAGE) -> str:
    """From (campaign id, name) pairs, keys 1, 2, ... in order: "Pour la campagne 42, plan
    blanc, tapez 1. Pour la campagne 43, tapez 2." A name may be empty."""
    labels = [
        _say(language, "campaign_label_named", campaign=campaign_number(cid), name=name.strip())
        if name.strip()
        else _say(language, "campaign_label", campaign=campaign_number(cid))
        for cid, name in campaigns
    ]
    return " ".join(_menu([(str(i), lb) for i, lb in enumerate(labels, start=1)], language))


def role_menu(roles: Sequence[tuple[str, str]], language: str = DEFAULT_LANGUAGE) -> str:
    """From (key, spoken role) pairs: "Pour infirmiers, tapez 1. Pour médecins, tapez 2." """
    return " ".join(_menu(roles, language))


def quota_now(role_label: str, n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """A role's quota: "Quota pour infirmiers : 20 personnes." / "Quota for nurses: 20 people." """
    return _count(language, "quota_now", n, role=role_label)


def quota_enter(role_label: str, language: str = DEFAULT_LANGUAGE) -> str:
    """ "Entrez le nouveau quota pour infirmiers, puis la touche dièse." """
    return _say(language, "quota_enter", role=role_label)


def extended(n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """After extending to the next group, with the number of people added."""
    return _count(language, "extended", n)


def role_label(role: str, role_labels: Mapping[str, str] | None = None) -> str:
    """How a role id is said: its label if there is one, else the id with spaces ("sage femme")."""
    return (role_labels or {}).get(role) or role.replace("_", " ")


def summary(
    report: Mapping[str, Any],
    language: str = DEFAULT_LANGUAGE,
    *,
    now: float,
    role_labels: Mapping[str, str] | None = None,
    tz: tzinfo | None = None,
) -> str:
    """The report line's point of situation, from `ivr.campaign.report.report()`'s dict.

    Says the campaign and whether it is a drill; how long it has run (and since when), or that
    it is over; how many were called (a final outcome other than cancelled, or a call in
    progress), available, unavailable, not reached; each role with a quota against it; and the
    arrivals announced within 30 and 60 minutes. `now` is epoch seconds; clock times are in `tz`.
    """
    name = str(report.get("name") or "").strip()
    campaign = campaign_number(str(report["campaign"]))
    if name:
        out = [_say(language, "summary_campaign_named", campaign=campaign, name=name)]
    else:
        out = [_say(language, "summary_campaign", campaign=campaign)]
    if report.get("drill"):
        out.append(_say(language, "summary_drill"))
    out.extend(_timing(report, language, now, tz))

    reached = sum(int(report.get(k, 0)) for k in (*ANSWERS, *NOT_REACHED))
    called = reached + int(report.get("in_flight", 0))
    out.append(_count(language, "called", called, total=int(report.get("total", 0))))
    out.append(_count(language, "available", int(report.get("available", 0))))
    out.append(_count(language, "unavailable", int(report.get("unavailable", 0))))
    not_reached = sum(int(report.get(k, 0)) for k in NOT_REACHED)
    out.append(_count(language, "not_reached", not_reached))

    out.extend(_quotas(report, language, role_labels))
    out.extend(_arrivals(report, language))
    return " ".join(out)


def _quotas(
    report: Mapping[str, Any], language: str, role_labels: Mapping[str, str] | None
) -> list[str]:
    """Each role with a quota: its available answers against it, and whether it is met."""
    out: list[str] = []
    for role, entry in report.get("by_role", {}).items():
        quota = entry.get("quota")
        if not quota:
            continue
        out.append(
            _say(
                language,
                "role_quota",
                role=_capitalized(role_label(role, role_labels)),
                available=_count(language, "role_available", int(entry.get("available", 0))),
                quota=_count(language, "role_quota_of", int(quota)),
            )
        )
        if entry.get("met"):
            out.append(_say(language, "role_quota_met"))
    return out


def _arrivals(report: Mapping[str, Any], language: str) -> list[str]:
    """The arrivals announced within 30 and within 60 minutes (or that none were given)."""
    out: list[str] = []
    forecast = report.get("forecast", {})
    within_30 = int(forecast.get("+30", 0))
    within_60 = within_30 + int(forecast.get("+60", 0))  # the report's buckets do not overlap
    if within_60 or any(int(v) for v in forecast.values()):
        out.append(
            _say(
                language,
                "arrivals",
                within_30=_count(language, "within_30", within_30),
                within_60=_count(language, "within_60", within_60),
            )
        )
    elif int(report.get("available", 0)):
        out.append(_say(language, "arrivals_none"))
    return out


def _timing(report: Mapping[str, Any], language: str, now: float, tz: tzinfo | None) -> list[str]:
    started = report.get("started_at")
    status = report.get("status")
    if status == "done":
        finished = report.get("finished_at")
        if started is None or finished is None:
            return [_say(language, "summary_done_untimed")]
        took = duration(finished - started, language, minutes_only=True)
        return [_say(language, "summary_done", elapsed=took)]
    if started is None:
        return []
    key = "summary_stopped" if status == "stopped" else "summary_running"
    elapsed = duration(now - started, language, minutes_only=True)
    return [_say(language, key, elapsed=elapsed, clock=clock(started, language, tz))]


def _capitalized(text: str) -> str:
    # Sentence case for logs and screen readers; espeak-ng says it the same either way.
    return text[:1].upper() + text[1:]


def placeholders(template: str) -> set[str]:
    """The `{names}` a phrase template expects (the tests compare them across languages)."""
    return set(re.findall(r"{(\w+)}", template))
