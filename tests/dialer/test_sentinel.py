"""Redis through Sentinel: the primary killed (SIGKILL) mid-campaign, Sentinel promotes the
replica, the campaign goes on; the old primary comes back as a replica; the new primary is
killed in turn; the campaign completes.

Real processes: a Redis primary and a replica, three Sentinels, an `ivr worker` placing calls
through the sandbox Asterisk to simulated phones. The invariants are those of
tests/dialer/test_faults.py: every person ends with exactly one final outcome, nobody who
answered is called again, no key press is lost.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.campaign import store
from ivr.config import Config
from ivr.db import connect_sentinel, follows_sentinel, sentinel_state
from ivr.keys import campaign_key
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.sentinel import MASTER, SentinelCluster
from tests.campaigntools import wait_done, wait_events
from tests.dialer.test_faults import SPEC, check_invariants, mixed_staff

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: What the worker logs (once) when the new primary has no replica to acknowledge writes.
DEGRADED = "no replica acknowledged a write"
REPLICA_BACK = "a replica is connected again"


@pytest.fixture
async def sentinel_db(sentinel_cluster: SentinelCluster) -> AsyncIterator[aioredis.Redis]:
    client = connect_sentinel(sentinel_cluster.addresses, MASTER)
    yield client
    await client.aclose()


async def start_worker(
    cluster: SentinelCluster, name: str, log: Path
) -> asyncio.subprocess.Process:
    """`ivr worker` finding Redis through IVR_REDIS_SENTINELS alone (IVR_REDIS_URL gives only
    the database: no address)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_CONFIG=str(sandbox.env_file()),
        IVR_REDIS_URL="redis:///0",
        IVR_REDIS_SENTINELS=cluster.env,
        IVR_REDIS_SENTINEL_MASTER=MASTER,
    )
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "worker", "--name", name, "--capacity", "30",
            "--no-lines", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip


async def first_write_after(db: aioredis.Redis, cid: str, since_ms: int) -> float:
    """Seconds from `since_ms` to the first event the primary appended after it (an event's
    stream id is the primary's clock when it was written)."""
    got = await db.xrange(campaign_key(cid, "events"), min=f"{since_ms + 1}-0", count=1)
    assert got, f"nothing written after {since_ms}"
    return (int(got[0][0].split("-")[0]) - since_ms) / 1000


async def test_primary_killed_twice_mid_campaign_fails_over(
    sandbox_config: Config,
    sentinel_cluster: SentinelCluster,
    sentinel_db: aioredis.Redis,
    tmp_path: Path,
) -> None:
    """The primary killed; it comes back (a replica now); then the new primary killed too."""
    assert follows_sentinel(sentinel_db)
    people = mixed_staff(240)
    cid = await store.create(sentinel_db, SPEC, people)
    log = tmp_path / "worker.log"
    proc = await start_worker(sentinel_cluster, "sentinel-0", log)
    first = sentinel_cluster.primary()
    try:
        await wait_events(sentinel_db, cid, "final", 30, timeout=120)
        killed_ms = int(time.time() * 1000)
        first.stop(kill=True)  # SIGKILL: calls in flight, writes in flight, no goodbye
        await wait_events(sentinel_db, cid, "final", 60, timeout=120)
        second = sentinel_cluster.primary()
        assert second.port != first.port, "Sentinel promoted the replica"
        recovered = await first_write_after(sentinel_db, cid, killed_ms)

        # The old primary comes back: the Sentinels make it a replica of the new one.
        await asyncio.to_thread(first.start)
        await asyncio.to_thread(sentinel_cluster.wait_replicated, second, 30)
        await wait_events(sentinel_db, cid, "final", 130, timeout=120)
        killed_again_ms = int(time.time() * 1000)
        second.stop(kill=True)
        await wait_done(sentinel_db, cid, timeout=240)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    assert sentinel_cluster.primary().port == first.port, "the first primary is back in charge"
    await check_invariants(sentinel_db, cid, people)
    recovered_again = await first_write_after(sentinel_db, cid, killed_again_ms)
    print(f"writes again {recovered:.1f} s and {recovered_again:.1f} s after each SIGKILL")
    assert recovered < 15 and recovered_again < 15

    # Alone, each new primary had no replica: the worker said so once per failover, not once
    # per call, and said when writes waited for a replica again in between.
    text = log.read_text(errors="replace")
    assert text.count(DEGRADED) == 2, text[-3000:]
    assert text.count(REPLICA_BACK) == 1, text[-3000:]

    state = await sentinel_state(sentinel_db)
    assert state is not None
    live = [s for s in state["sentinels"] if "error" not in s]
    assert len(live) == 3
    assert {s["primary"] for s in live} == {f"127.0.0.1:{first.port}"}
