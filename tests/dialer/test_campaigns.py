"""Campaigns through the real sandbox Asterisk and a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.spec import CampaignError, CampaignSpec
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.pbx.calls import CallRequest
from tests.campaigntools import attempts_by_person, events, person, states, wait_done

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Any:
    """A dialer task that fails is logged, not raised: make it fail the test."""
    yield
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name.startswith("ivr")]
    assert not errors, [r.getMessage() for r in errors]


FAST = dict(ring_timeout=6, amd=False, ask_eta=False, retry_delay=1)


class Workers:
    """Dialer workers running in this process on the sandbox Asterisk."""

    def __init__(self, alerter: Alerter, db: aioredis.Redis) -> None:
        self.alerter, self.db = alerter, db
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.requests: list[CallRequest] = []
        real_call = alerter.caller.call

        async def spy(request: CallRequest, on_outcome: Any = None) -> Any:
            self.requests.append(request)  # the real call still goes out
            return await real_call(request, on_outcome)

        alerter.caller.call = spy  # type: ignore[method-assign]

    def start(self, capacity: int = 10, name: str = "w0") -> DialerWorker:
        worker = DialerWorker(self.alerter, self.db, WorkerSettings(name=name, capacity=capacity))
        self.tasks.append(asyncio.create_task(worker.run(self.stop)))
        return worker

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


@pytest.fixture
async def workers(alerter: Alerter, db: aioredis.Redis) -> AsyncIterator[Workers]:
    w = Workers(alerter, db)
    yield w
    await w.close()


async def test_quota_stops_dialling_the_role(workers: Workers, db: aioredis.Redis) -> None:
    nurses = [person(f"n{i}", "nurse", f"1011{i:03d}") for i in range(12)]
    doctors = [person(f"d{i}", "doctor", f"1022{i:03d}") for i in range(3)]
    workers.start(capacity=2)
    spec = CampaignSpec(messages={"fr": "Test quota."}, quotas={"nurse": 3}, **FAST)
    cid = await store.create(db, spec, nurses + doctors)
    report = await wait_done(db, cid)

    nurse = report["by_role"]["nurse"]
    assert nurse["met"] and 3 <= nurse["available"] <= 3 + 2 - 1, (nurse, report["attempts"])
    assert nurse["available"] + nurse["cancelled"] == 12
    dialled = [r.number for r in workers.requests if r.number.startswith("1011")]
    assert len(dialled) == nurse["available"], "no nurse dialled once the quota was met"
    assert report["by_role"]["doctor"]["unavailable"] == 3
    assert report["pending"] == 0 and report["status"] == "done"


async def test_alternate_numbers_retries_and_final_outcome(
    workers: Workers, db: aioredis.Redis
) -> None:
    people = [
        person("alt", "nurse", "2000001", "1011002"),  # no answer, then the second number
        person("busy", "nurse", "3000003"),  # busy at every try
        person("gone", "nurse", "9000004"),  # unknown number
    ]
    workers.start(capacity=3)
    spec = CampaignSpec(messages={"fr": "Test."}, attempts=2, escalate=False, **FAST)
    cid = await store.create(db, spec, people)
    report = await wait_done(db, cid)
    tries = await attempts_by_person(db, cid)
    assert tries["alt"] == ["no_answer", "available"]
    assert tries["busy"] == ["busy", "busy"]
    assert tries["gone"] == ["failed", "failed"]
    assert (report["available"], report["busy"], report["failed"]) == (1, 1, 1)
    numbers = [r.number for r in workers.requests if r.number.startswith("20")]
    assert numbers == ["2000001"], "an answered person is not called again"


async def test_unreachable_person_escalates_to_backup(workers: Workers, db: aioredis.Redis) -> None:
    main = person("chief", "anaesthetist", "5000001", backup="deputy")
    deputy = person("deputy", "anaesthetist", "1011002", unit="bloc")
    other = person("nurse", "nurse", "1022003")
    workers.start(capacity=2)
    spec = CampaignSpec(messages={"fr": "Test."}, units=("urgences",), attempts=1, **FAST)
    # The deputy is in the roster but not targeted: called only if the chief is unreachable.
    cid = await store.create(db, spec, [main, deputy, other])
    assert (await reports.report(db, cid))["total"] == 2
    report = await wait_done(db, cid)
    final = {pid: s["o"] for pid, s in (await states(db, cid)).items()}
    assert final == {"chief": "failed", "deputy": "available", "nurse": "unavailable"}
    assert report["total"] == 3
    kinds = [e["type"] for e in await events(db, cid)]
    assert "escalated" in kinds


async def test_targets_by_role(db: aioredis.Redis) -> None:
    spec = CampaignSpec(messages={"fr": "x"}, roles=("midwife",))
    with pytest.raises(CampaignError, match="nobody"):
        await store.create(db, spec, [person("a", "nurse", "1011")])


async def test_voicemail_drill_and_arrival_time(workers: Workers, db: aioredis.Redis) -> None:
    people = [
        person("machine", "nurse", "6100001"),  # answering machine
        person("eta", "nurse", "1163002"),  # presses 1, then 30 minutes
    ]
    workers.start(capacity=2)
    spec = CampaignSpec(
        messages={"fr": "Exercice."}, drill=True, attempts=1, ring_timeout=6, amd=True,
        ask_eta=True, callback_number="0123456789",
    )  # fmt: skip
    cid = await store.create(db, spec, people)
    report = await wait_done(db, cid)
    assert report["drill"] is True
    assert (report["voicemail"], report["available"]) == (1, 1)
    assert report["by_role"]["nurse"]["arrivals"]["30"] == 1
    assert report["forecast"]["+30"] == 1
    assert (await states(db, cid))["eta"]["eta"] == 30
    for request in workers.requests:
        parts = request.message.split("&")
        assert parts[0].endswith("/drill") and parts[-1].endswith("/drill")
        assert request.variables.get("IVR_VOICEMAIL")


async def test_stop_cancels_the_rest(workers: Workers, db: aioredis.Redis) -> None:
    """Nobody more is called; the call in progress ends with its answer, everyone else ends
    `cancelled` (not `pending` for ever), and the campaign stays `stopped`."""
    people = [person(f"p{i}", "nurse", f"1211{i:03d}") for i in range(6)]
    workers.start(capacity=1)
    spec = CampaignSpec(messages={"fr": "Test."}, **FAST)
    cid = await store.create(db, spec, people)
    await store.stop(db, cid)
    report = await wait_done(db, cid)
    assert report["status"] == "stopped" and report["finished_at"] is not None
    assert report["available"] <= 1 and report["cancelled"] >= 5
    assert report["available"] + report["cancelled"] == 6 and report["pending"] == 0


async def test_two_workers_share_a_campaign_nobody_called_twice(
    sandbox_config: Config, db: aioredis.Redis
) -> None:
    people = [person(f"p{i}", "nurse", f"1011{i:03d}") for i in range(30)]
    stop = asyncio.Event()
    async with Alerter(sandbox_config) as a1, Alerter(sandbox_config) as a2:
        w1 = DialerWorker(a1, db, WorkerSettings(name="w1", capacity=5))
        w2 = DialerWorker(a2, db, WorkerSettings(name="w2", capacity=5))
        tasks = [asyncio.create_task(w.run(stop)) for w in (w1, w2)]
        cid = await store.create(db, CampaignSpec(messages={"fr": "T."}, **FAST), people)
        report = await wait_done(db, cid)
        stop.set()
        await asyncio.gather(*tasks)
    assert report["available"] == 30
    assert w1.placed > 0 and w2.placed > 0 and w1.placed + w2.placed == 30
    tries = await attempts_by_person(db, cid)
    assert all(t == ["available"] for t in tries.values()) and len(tries) == 30


async def test_recorded_message_is_what_callees_hear(
    workers: Workers, db: aioredis.Redis, alerter: Alerter
) -> None:
    spoken = await alerter.speaker.render("Message du directeur, enregistré.", "fr")
    imported = await alerter.speaker.import_audio(spoken)
    relative = str(imported.relative_to(alerter.config.audio_dir))
    workers.start(capacity=1)
    spec = CampaignSpec(messages={}, recordings={"fr": relative}, **FAST)
    cid = await store.create(db, spec, [person("a", "nurse", "1011001")])
    report = await wait_done(db, cid)
    assert report["available"] == 1
    (request,) = workers.requests
    assert request.message == alerter.config.asterisk_path(imported.with_suffix(""))
