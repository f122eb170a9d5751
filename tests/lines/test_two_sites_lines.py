"""The phone lines on both sites, for real (issue 16: "the trigger, report and callback lines
work on every site"): sites a and b each run their Asterisk and an `ivr worker` serving the
lines (`ivr.sandbox.sites`, tests/sitetools.py), Redis through the three Sentinels.

The director's phone is SIPp on site b's host calling site b's Asterisk (tests/sitephone.py):
PIN, scenario, confirmation; the campaign starts, the test sees it through the Sentinels, and
both sites' workers call the staff. Staff who missed the call call back, one on each site; the
report line on site a speaks the summary of that campaign and stops it. Then site a loses power
and the director calls site b at once: the trigger line waits for the Sentinels to promote b's
replica and starts the campaign there. Last, site a is cut off from the others: its lines,
which would write to a stale primary, refuse to start, answer or stop anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.access import audit
from ivr.access.pins import PinStore
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.scenarios import load_role_labels
from ivr.config import Config
from ivr.keys import campaign_key
from ivr.sandbox.sites import TwoSites
from ivr.staff.roster import RosterStore
from ivr.voice import speech
from ivr.voice.tts import Speaker
from tests.campaigntools import person, states, wait_events
from tests.dialer import test_two_sites
from tests.sitephone import FIRST_QUESTION, PromptCall, site_phone
from tests.sitetools import Calls, SiteWorker, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.sites, pytest.mark.timeout(420)]

#: The two-site fault tests' fixtures: the topology, and the test's client through the Sentinels.
sites, db = test_two_sites.sites, test_two_sites.db

PIN = "246810"
DIRECTOR = "0611223344"
#: Nurses who answer within 0-2 s and press 1.
QUICK = 24
#: Nurses whose phone rings until the ring timeout, then wait 15 minutes for the next try:
#: they call back (the first one on site a, the second on site b); the third one stays pending.
MISSED = ("2000001", "2000002", "2000003")
SCENARIOS = """
[roles]
nurse = { fr = "infirmiers", en = "nurses" }

[[scenario]]
key = 1
name = "deux sites"
label.fr = "essai des deux sites"
label.en = "two sites trial"
message.fr = "Essai des deux sites."
message.en = "Two sites trial."
roles = ["nurse"]
ring_timeout = 6
attempts = 3
retry_delay = 900
amd = false
ask_eta = false
director_callback = false
"""
#: What a worker serving the lines logs once it listens (ivr.pbx.agi).
LISTENING = "FastAGI listening"


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.toml"
    path.write_text(SCENARIOS, encoding="utf-8")
    return path


@pytest.fixture
async def line_workers(
    sites: TwoSites,
    scenarios: Path,
    tmp_path: Path,
) -> AsyncIterator[dict[str, SiteWorker]]:
    """A worker serving the lines on each site, 8 channels each (the staff spread over both)."""
    env = {"IVR_SCENARIOS": str(scenarios)}
    running = {}
    try:
        for site in ("a", "b"):
            running[site] = await start_worker(
                sites, site, tmp_path, lines=True, capacity=8, env=env
            )
        for worker in running.values():
            await worker.said(LISTENING, timeout=180)
        yield running
    finally:
        for worker in running.values():
            await worker.stop()


async def staff_and_pin(db: aioredis.Redis) -> None:
    people = [person(f"n{i:02d}", "nurse", f"1{i % 3}1{i:05d}") for i in range(QUICK)]
    people += [person(f"m{i}", "nurse", number) for i, number in enumerate(MISSED)]
    people.append(person("d0", "director", DIRECTOR))
    await RosterStore(db).replace(people)
    await PinStore(db).set("d0", PIN)


async def wait_tried(db: aioredis.Redis, cid: str, pids: set[str], timeout: float) -> None:
    """Until each of `pids` has had an attempt end (the campaign's event log)."""

    async def loop() -> None:
        last, left = "0", set(pids)
        while left:
            got = await db.xread({campaign_key(cid, "events"): last}, block=1000)
            for _, entries in got:
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get("type") == "attempt":
                        left.discard(fields.get("pid", ""))

    await asyncio.wait_for(loop(), timeout)


async def trigger_on_b(
    sites: TwoSites, config: Config, db: aioredis.Redis, workers: dict[str, SiteWorker]
) -> tuple[str, PromptCall]:
    """The director calls site b's trigger line: PIN, scenario 1, 1 to launch (typed ahead
    from the first question on). The new campaign's id, read through the Sentinels, and the
    call. Site b's worker ran the line (its log says so), not site a's."""
    before = await store.latest(db)
    async with site_phone(sites, "b", config) as phone:
        call = await phone.call("trigger", DIRECTOR, [(FIRST_QUESTION, f"{PIN}#11")])
    cid = await store.latest(db)
    assert cid is not None and cid != before, f"no campaign started: {call.played}"
    assert cid in await store.active(db)
    assert (await store.get_meta(db, cid))["name"] == "deux sites"
    started = [e for e in await audit.entries(db) if e["action"] == "campaign.start"]
    assert [(e["who"], e["target"]) for e in started][-1] == ("phone:d0", cid)
    assert started[-1]["details"]["caller"] == DIRECTOR
    said = f"campaign {cid} started by phone"
    await workers["b"].said(said, timeout=10)
    assert not [line for line in workers["a"].lines() if said in line.get("message", "")]
    return cid, call


def summary_files(config: Config, report: reports.Report, times: list[float]) -> set[str]:
    """The files the report line plays for `report`'s summary, said at any of `times`."""
    labels = load_role_labels(config.scenarios).get("fr", {})
    speaker = Speaker(config.audio_dir, rate=config.tts_rate)
    texts = {speech.summary(report, "fr", now=t, role_labels=labels) for t in times}
    return {config.asterisk_path(speaker.cache_path(t, "fr").with_suffix("")) for t in texts}


async def test_trigger_report_and_callback_lines_on_both_sites(
    sites: TwoSites,
    db: aioredis.Redis,
    line_workers: dict[str, SiteWorker],
    sandbox_config: Config,
    scenarios: Path,
) -> None:
    await staff_and_pin(db)
    cid, _ = await trigger_on_b(sites, sandbox_config, db, line_workers)
    await wait_events(db, cid, "final", QUICK, timeout=120)
    missed = {f"m{i}" for i in range(len(MISSED))}
    await wait_tried(db, cid, missed, timeout=60)
    # Two nurses who missed the call call back, one on each site, at once: 1, available.
    async with site_phone(sites, "a", sandbox_config) as phone_a:
        async with site_phone(sites, "b", sandbox_config) as phone_b:
            await asyncio.gather(
                phone_a.call("callback", MISSED[0], [(FIRST_QUESTION, "1")]),
                phone_b.call("callback", MISSED[1], [(FIRST_QUESTION, "1")]),
            )
        now = await states(db, cid)
        for pid in ("m0", "m1"):
            assert (now[pid]["s"], now[pid]["o"], now[pid].get("cb")) == ("d", "available", 1)
        assert now["m2"]["s"] != "d", "the third one still waits for the next try"
        # The report line on site a: PIN, the summary of that campaign, 2 stop, 1 confirm.
        report = await reports.report(db, cid)
        assert (report["total"], report["available"]) == (QUICK + 3, QUICK + 2), report
        before = time.time()
        script = [(FIRST_QUESTION, f"{PIN}#"), ("report_menu", "2"), ("stop_confirm", "1")]
        call = await phone_a.call("report", DIRECTOR, script)
    config = dataclasses.replace(sandbox_config, scenarios=scenarios)
    expected = summary_files(config, report, [before, time.time()])
    assert expected & set(call.played), (expected, call.played)
    assert (await store.get_meta(db, cid))["status"] == "stopped"
    stopped = [e for e in await audit.entries(db) if e["action"] == "campaign.stop"]
    assert [(e["who"], e["target"]) for e in stopped] == [("phone:d0", cid)]
    # Stopped: whoever still waited for a call is cancelled; the callers' answers stay.
    final = await states(db, cid)
    assert final["m2"]["o"] == "cancelled"
    assert [final[pid]["o"] for pid in ("m0", "m1")] == ["available", "available"]
    assert await sites_that_called(line_workers) == {"a", "b"}, "both sites' workers called staff"


async def sites_that_called(workers: dict[str, SiteWorker]) -> set[str]:
    """The sites whose workers placed calls (their logs, read once they stopped); no call was
    placed by both."""
    for worker in workers.values():
        await worker.stop()
    calls = Calls.of(list(workers.values()))
    assert calls.placed_by_both() == []
    return {site for s in calls.by_attempt.values() for site in s}


async def test_trigger_line_on_b_while_site_a_is_powered_off(
    sites: TwoSites,
    db: aioredis.Redis,
    line_workers: dict[str, SiteWorker],
    sandbox_config: Config,
) -> None:
    """Site a (the Redis primary, its Asterisk, its worker) loses power and the director calls
    site b's trigger line at once: the line waits for the Sentinels to promote b's replica,
    starts the campaign there, and b's worker calls the staff alone."""
    await staff_and_pin(db)
    assert sites.cluster is not None
    await asyncio.to_thread(sites.cluster.wait_replicated, sites.redis["a"], 30, 1)
    fault = time.time()
    await asyncio.to_thread(sites.power_off, "a")
    cid, call = await trigger_on_b(sites, sandbox_config, db, line_workers)
    assert sites.cluster.primary() is sites.redis["b"]
    started = await line_workers["b"].said(f"campaign {cid} started by phone", timeout=1)
    at = datetime.fromisoformat(started["time"]).timestamp() - fault
    gaps = [round(b - a, 1) for a, b in itertools.pairwise([fault, *call.began])]
    print(f"power off: campaign {cid} started by phone on b {at:.1f} s after; prompts began "
          f"after {gaps} s")  # fmt: skip
    await wait_events(db, cid, "final", QUICK, timeout=180)
    await wait_tried(db, cid, {f"m{i}" for i in range(len(MISSED))}, timeout=60)
    await store.stop(db, cid, by="test")
    report = await reports.report(db, cid)
    assert (report["available"], report["cancelled"]) == (QUICK, len(MISSED)), report
    assert await sites_that_called(line_workers) == {"b"}


async def test_lines_of_a_cut_off_site_change_nothing(
    sites: TwoSites,
    db: aioredis.Redis,
    line_workers: dict[str, SiteWorker],
    sandbox_config: Config,
) -> None:
    """Site a is cut off from the others (its phones still reach its Asterisk) and b's replica
    was promoted. What a's lines would write goes to a's Redis, a stale primary, and is dropped
    when the link comes back: a campaign started there would be called by nobody (a's worker
    claims nobody while cut off), an answer or a stop would be undone, and the callers told
    it was done. So a's lines say they cannot (the error prompt) and change nothing: the
    trigger line starts no campaign, the callback line counts no answer, the report line does
    not stop the campaign (all three called at once: each asks the Sentinels for 10 s)."""
    await staff_and_pin(db)
    cid, _ = await trigger_on_b(sites, sandbox_config, db, line_workers)
    await wait_tried(db, cid, {"m0"}, timeout=60)
    assert sites.cluster is not None
    await asyncio.to_thread(sites.cluster.wait_replicated, sites.redis["a"], 30, 1)
    await asyncio.to_thread(sites.cut, "a")
    others = [sites.sentinels["b"], sites.sentinels["c"]]
    await asyncio.to_thread(sites.cluster.wait_sentinels_agree, sites.redis["b"], 60, others)
    report = [(FIRST_QUESTION, f"{PIN}#"), ("report_menu", "2")]
    async with site_phone(sites, "a", sandbox_config) as phone:
        calls = await asyncio.gather(
            phone.call("trigger", DIRECTOR, [(FIRST_QUESTION, f"{PIN}#11")]),
            phone.call("callback", MISSED[0], [(FIRST_QUESTION, "1")]),
            phone.call("report", "0611223345", report),
        )
    for call in calls:
        assert call.played[-1].rsplit("/", 1)[-1] == "error", call.played
    for refused in ("campaign start (d0, scenario 1)", f"answer of m0 to campaign {cid}",
                    f"change to campaign {cid} (d0)"):  # fmt: skip
        await line_workers["a"].said(f"{refused} refused", timeout=1)
    messages = [line["message"] for line in line_workers["a"].lines()]
    assert not [m for m in messages if re.match(r"campaign \d+ started by phone", m)]
    # On the primary: the one campaign, running; m0's answer not counted.
    assert await store.latest(db) == cid
    assert (await store.get_meta(db, cid))["status"] == "running"
    assert (await states(db, cid))["m0"].get("o") != "available"
    # The link back: a's worker (which went on with the calls it held) can finish and stop.
    await asyncio.to_thread(sites.restore, "a")
    await asyncio.to_thread(sites.cluster.wait_replicated, sites.redis["b"], 60, 1)
