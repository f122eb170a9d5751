"""The after-action report's numbers and page, from synthetic campaigns (no Redis, no Asterisk)."""

from __future__ import annotations

import json
import re
from typing import Any

from ivr.campaign import afteraction, reportpage
from ivr.campaign.afteraction import CampaignData
from ivr.campaign.state import PersonState
from ivr.staff.roster import Person

T0 = 1_700_000_000_000
MIN = 60_000


def ev(kind: str, minute: float, **fields: Any) -> dict[str, str]:
    return {
        "type": kind,
        "t": str(int(T0 + minute * MIN)),
        **{k: str(v) for k, v in fields.items()},
    }


def campaign(
    events: list[dict[str, str]],
    roles: dict[str, tuple[int, int | None]],
    *,
    cid: str = "7",
    drill: bool = False,
    people: dict[str, dict[str, Any]] | None = None,
    states: dict[str, dict[str, Any]] | None = None,
    available: int = 0,
) -> CampaignData:
    """`roles`: role -> (people, quota or None)."""
    by_role = {
        role: {"total": total, "quota": quota, "available": 0, "met": False}
        for role, (total, quota) in roles.items()
    }
    summary = {
        "campaign": cid, "name": "plan blanc", "status": "done", "drill": drill,
        "total": sum(t for t, _ in roles.values()), "available": available,
        "started_at": T0 / 1000, "by_role": by_role,
    }  # fmt: skip
    typed_people = {
        pid: Person(pid, p["n"], p["r"], p.get("u", ""), ()) for pid, p in (people or {}).items()
    }
    typed_states = {pid: PersonState.decode(json.dumps(s)) for pid, s in (states or {}).items()}
    return CampaignData(summary, [ev("started", 0), *events], typed_people, typed_states)


def staff(pid: str, role: str, unit: str = "urgences", name: str = "") -> dict[str, Any]:
    """A person as the campaign keeps them (`Person.to_json` keys)."""
    return {"n": name or f"Staff {pid}", "r": role, "u": unit}


NURSES = {f"n{i}": staff(f"n{i}", "nurse") for i in range(8)}
DOCTORS = {f"d{i}": staff(f"d{i}", "doctor", "rea") for i in range(4)}


def test_minutes_count_from_the_started_event() -> None:
    data = campaign([ev("final", 2.5, pid="n0", outcome="available")], {"nurse": (1, None)})
    assert data.start_ms == T0
    assert data.minutes(T0 + 90_000) == 1.5
    assert afteraction.available_answers(data) == [(2.5, "n0")]


def test_available_answers_are_ordered_and_one_per_person() -> None:
    data = campaign(
        [
            ev("final", 3, pid="n1", outcome="available"),
            ev("final", 1, pid="n0", outcome="available"),
            ev("final", 2, pid="n2", outcome="unavailable"),
            ev("final", 4, pid="n3", outcome="no_answer"),
            # A replayed final for the same person must not count them twice.
            ev("final", 5, pid="n1", outcome="available"),
        ],
        {"nurse": (4, None)},
    )
    assert afteraction.available_answers(data) == [(1.0, "n0"), (3.0, "n1")]


def test_curve_puts_arrivals_at_answer_time_plus_minutes_keyed() -> None:
    data = campaign(
        [
            ev("final", 1, pid="n0", outcome="available"),
            ev("eta", 1.5, pid="n0", minutes=30),
            ev("final", 2, pid="n1", outcome="available"),
            ev("eta", 2.2, pid="n1", minutes=10),
            ev("final", 4, pid="n2", outcome="available"),
            ev("eta", 4.1, pid="n2", minutes="junk"),
        ],
        {"nurse": (3, None)},
    )
    c = afteraction.curve(data)
    assert c.available == [(1.0, 1), (2.0, 2), (4.0, 3)]
    assert c.on_site == [(12.0, 1), (31.0, 2)], "answer minute + keyed minutes, in order"


def test_time_to_quota_per_role_and_total() -> None:
    events = [ev("final", m, pid=pid, outcome="available") for m, pid in [
        (1, "n0"), (2, "d0"), (3, "d1"), (4, "d2"), (5, "n1"), (6, "n2"), (7, "n3"),
    ]]  # fmt: skip
    data = campaign(
        events, {"nurse": (8, 4), "doctor": (4, 2)}, people={**NURSES, **DOCTORS}, available=7
    )
    reached = afteraction.time_to_quota(data)
    assert reached["nurse"] == {25: 1.0, 50: 5.0, 75: 6.0, 100: 7.0}
    assert reached["doctor"] == {25: 2.0, 50: 2.0, 75: 3.0, 100: 3.0}
    # Total quota 6: d2 (beyond the doctors' quota of 2) does not count towards it.
    assert reached[""] == {25: 2.0, 50: 3.0, 75: 6.0, 100: 7.0}


def test_time_to_quota_not_reached_is_none_and_no_quota_no_total() -> None:
    events = [ev("final", 2, pid="n0", outcome="available")]
    data = campaign(events, {"nurse": (8, 3)}, people=NURSES)
    assert afteraction.time_to_quota(data)["nurse"] == {25: 2.0, 50: None, 75: None, 100: None}
    assert afteraction.time_to_quota(campaign(events, {"nurse": (8, None)}, people=NURSES)) == {}


def test_timeline_per_unit_and_answers() -> None:
    data = campaign(
        [
            ev("final", 1, pid="n0", outcome="available"),
            ev("escalated", 2, pid="n1", backup="n7"),
            ev("quota_met", 3, role="nurse"),
            ev("quota", 4, role="nurse", old=1, quota=2),
            ev("stopped", 5),
        ],
        {"nurse": (3, 1)},
        people={"n0": NURSES["n0"], "n1": NURSES["n1"], "d0": DOCTORS["d0"]},
        states={
            "n0": {"s": "d", "o": "available", "ft": T0 + 1 * MIN, "eta": 20},
            "n1": {"s": "d", "o": "no_answer", "ft": T0 + 2 * MIN},
            "d0": {"s": "d", "o": "unavailable", "ft": T0 + 30_000},
        },
    )
    assert [text for _, text in afteraction.timeline(data)] == [
        "Campaign started", "Backup n7 called for n1", "Quota met: nurse",
        "Quota raised: nurse 1 → 2", "Calling stopped",
    ]  # fmt: skip
    units = afteraction.per_unit(data)
    assert units["urgences"] == {"total": 2, "available": 1, "no_answer": 1}
    assert units["rea"] == {"total": 1, "unavailable": 1}
    rows = afteraction.answers(data)
    assert [(r["id"], r["answer"], r["minute"], r["eta"]) for r in rows] == [
        ("d0", "unavailable", 0.5, None),
        ("n0", "available", 1.0, 20),
    ], "answers only, in answer order"


def _polyline(html: str, title: str) -> list[tuple[float, float]]:
    found = re.search(rf'points="([^"]+)"><title>{title}</title>', html)
    assert found, title
    return [(float(x), float(y)) for x, y in (p.split(",") for p in found.group(1).split())]


def test_curve_svg_is_a_staircase_up_to_the_count() -> None:
    events = [ev("final", m, pid=f"n{m}", outcome="available") for m in (1, 2, 3)]
    svg = reportpage.curve_svg(campaign(events, {"nurse": (8, 3)}, people=NURSES))
    points = _polyline(svg, "available answers")
    assert len(points) == 2 + 2 * 3
    ys = [y for _, y in points]
    assert ys == sorted(ys, reverse=True), "never goes down (SVG y grows downwards)"
    assert ys[0] > ys[-1]
    assert "quota nurse 3" in svg


def test_report_page_is_self_contained_and_escaped() -> None:
    people = {"n0": staff("n0", "nurse", name="<script>alert(1)</script>"), **DOCTORS}
    data = campaign(
        [ev("final", 1, pid="n0", outcome="available")],
        {"nurse": (1, 1)},
        people=people,
        states={"n0": {"s": "d", "o": "available", "ft": T0 + MIN}},
    )
    html = reportpage.render_html(data)
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<polyline" in html
    assert "<script" not in html, "names are escaped; the page has no script"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)=|url\(|@import|https?://""", html), "no outside resource"
    assert "DRILL" not in html
    for heading in ("Timeline", "Counts", "Per role", "Per unit", "Mobilisation curve", "Answers"):
        assert f"<h2>{heading}</h2>" in html


def test_drill_report_is_marked_and_compared_with_previous_drills() -> None:
    def drill(cid: str, minutes: list[float]) -> CampaignData:
        events = [ev("final", m, pid=f"n{i}", outcome="available") for i, m in enumerate(minutes)]
        return campaign(events, {"nurse": (8, 2)}, cid=cid, drill=True, people=NURSES)

    html = reportpage.render_html(drill("9", [1, 2]), [drill("4", [3, 8]), drill("2", [5])])
    assert "DRILL / EXERCICE" in html
    table = html.split("<h2>Comparison with previous drills</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td>.*?</tr>", table)
    assert rows == ["9", "4", "2"]
    assert "2.0 min" in table and "8.0 min" in table, "time to 100% of each drill"
    assert "Comparison" not in reportpage.render_html(campaign([], {"nurse": (1, 1)}))


def test_channels_and_how_each_answer_came() -> None:
    """The plan, what each channel did, and per answer: a key on the call, the callback line
    or an SMS reply."""
    data = campaign(
        [ev("final", m, pid=pid, outcome="available") for m, pid in ((1, "n0"), (2, "n1"))]
        + [ev("final", 3, pid="n2", outcome="unavailable")],
        {"nurse": (4, None)},
        people=NURSES,
        states={
            "n0": {"s": "d", "o": "available", "ft": T0 + MIN},
            "n1": {"s": "d", "o": "available", "ft": T0 + 2 * MIN, "sr": 1},
            "n2": {"s": "d", "o": "unavailable", "ft": T0 + 3 * MIN, "cb": 1},
            "n3": {"s": "d", "o": "no_answer", "ft": T0 + 4 * MIN},
        },
    )
    data.summary.update(
        plan=["voice", "sms", "voice"], attempts=7,
        sms={"sent": 2, "delivered": 1, "undelivered": 0, "failed": 1, "unknown": 0,
             "skipped": 1, "answered": 1},
        mail={"sent": 3, "failed": 1},
    )  # fmt: skip
    assert [r["by"] for r in afteraction.answers(data)] == ["voice", "sms", "callback"]
    html = reportpage.render_html(data)
    channels = html.split("<h2>Channels</h2>")[1].split("</table>")[0]
    assert "Delivery plan: voice → sms → voice." in channels
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td[^>]*>(\d+)</td></tr>", channels)
    counts = {(channel, what): int(n) for channel, what, n in cells}
    assert counts[("Voice", "calls placed")] == 7
    assert counts[("Voice", "answered with a key on the call")] == 1
    assert counts[("Callback line", "answered by calling back")] == 1
    assert counts[("SMS", "delivered (receipt)")] == 1
    assert counts[("SMS", "refused by the gateway")] == 1
    assert counts[("SMS", "answered by reply")] == 1
    assert counts[("Mail", "failed")] == 1
    answers = html.split("<h2>Answers</h2>")[1]
    assert "SMS reply" in answers and "callback line" in answers and "key on the call" in answers
    voice_only = campaign([], {"nurse": (1, None)})
    assert "<td>SMS</td>" not in reportpage.render_html(voice_only), "no SMS rows without SMS"
