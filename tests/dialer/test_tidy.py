"""An ended campaign leaves nothing in Asterisk's database: its quota flags and the journal
entries kept for outcomes no replica acknowledged are removed by the worker (issue 16, item 3).
Real sandbox Asterisk, real redis-server."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.pbx.astdb import JOURNAL_FAMILY, QUOTA_FAMILY, AstDb, quota_flag
from tests.campaigntools import person, wait_done, wait_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def left_of(astdb: AstDb, uid: str) -> list[str]:
    """What AstDB still holds of campaign `uid`."""
    quota = [k for k in await astdb.entries(QUOTA_FAMILY) if k.startswith(f"{uid}-")]
    journal = [k for k in await astdb.entries(JOURNAL_FAMILY) if k.startswith(f"ivr-{uid}-")]
    return quota + journal


async def test_an_ended_campaign_leaves_no_quota_flag_nor_journal_entry(
    alerter: Alerter, db: aioredis.Redis
) -> None:
    spec = CampaignSpec(
        messages={"fr": "Test rangement."}, quotas={"nurse": 2}, ring_timeout=6, amd=False,
        ask_eta=False, retry_delay=1,
    )  # fmt: skip
    people = [person(f"n{i}", "nurse", f"1{i % 3}1{i:05d}") for i in range(6)]  # all press 1
    cid = await store.create(db, spec, people)
    uid = (await store.get_meta(db, cid))["uid"]
    astdb = AstDb(alerter.link)
    # What an outcome no replica acknowledged leaves behind (ivr.replication).
    kept = {"Action": "DBPut", "Family": JOURNAL_FAMILY, "Key": f"ivr-{uid}-99-1", "Val": "1"}
    await alerter.link.action(kept)
    stop = asyncio.Event()
    worker = DialerWorker(alerter, db, WorkerSettings(name="tidy", capacity=3, lease=1.5))
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_events(db, cid, "quota_met", 1, timeout=60)
        # The worker sets the flag on hearing of the quota; the calls still up hear it.
        deadline = time.monotonic() + 10
        while quota_flag(uid, "nurse") not in await left_of(astdb, uid):
            assert time.monotonic() < deadline, "the quota flag was set"
            await asyncio.sleep(0.05)  # no event says "flag set": read until it is
        await wait_done(db, cid, timeout=60)
        # The worker's upkeep (every lease / 3) forgets the campaign once it is over.
        for _ in range(50):
            if not await left_of(astdb, uid):
                break
            await asyncio.sleep(0.2)  # no event says "tidied": read until it is
        assert await left_of(astdb, uid) == []
    finally:
        stop.set()
        await task


async def test_what_ended_while_no_worker_was_up_is_swept_when_one_starts(
    alerter: Alerter, db: aioredis.Redis
) -> None:
    """Flags and journal entries of campaigns that ended while no worker of this Asterisk was
    up go at the worker's first upkeep round; those of a campaign with a call still in flight
    stay, and so do those of campaigns this Redis does not know (another installation's,
    another test's) and keys that are not ours."""
    spec = CampaignSpec(messages={"fr": "Test rangement."}, quotas={"nurse": 1})
    ended, held = [await store.create(db, spec, [person(p, "nurse", "1")]) for p in "ab"]
    uids = {cid: (await store.get_meta(db, cid))["uid"] for cid in (ended, held)}
    for cid in (ended, held):
        await store.stop(db, cid)
    # A call of `held` is still up somewhere (its lease runs).
    await db.zadd(f"ivr:campaign:{held}:leases", {"b": time.time() * 1000 + 60_000})
    astdb = AstDb(alerter.link)
    put = {"Action": "DBPut", "Val": "1"}
    for uid in (*uids.values(), "deadbeef"):  # deadbeef: a campaign of another Redis
        await alerter.link.action({**put, "Family": QUOTA_FAMILY, "Key": quota_flag(uid, "nurse")})
        await alerter.link.action({**put, "Family": JOURNAL_FAMILY, "Key": f"ivr-{uid}-0-1"})
    await alerter.link.action({**put, "Family": QUOTA_FAMILY, "Key": "not-ours"})
    stop = asyncio.Event()
    worker = DialerWorker(alerter, db, WorkerSettings(name="sweep", capacity=3, lease=1.5))
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(50):
            if not await left_of(astdb, uids[ended]):
                break
            await asyncio.sleep(0.2)  # no event says "tidied": read until it is
        assert await left_of(astdb, uids[ended]) == []
        assert len(await left_of(astdb, uids[held])) == 2, "a call of it is still up"
        assert len(await left_of(astdb, "deadbeef")) == 2, "not this Redis's campaign"
        assert "not-ours" in await astdb.entries(QUOTA_FAMILY)
    finally:
        stop.set()
        await task
        await astdb.forget_campaigns({uids[held], "deadbeef"})
        await alerter.link.action({"Action": "DBDel", "Family": QUOTA_FAMILY, "Key": "not-ours"})
