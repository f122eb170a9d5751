"""A worker stops when it is told to, whatever Redis and Asterisk are doing.

The attack (or a plain Tuesday): Redis unreachable at start, Redis gone under an idle worker,
Asterisk gone, calls in progress. systemd and compose send SIGTERM and wait: the worker must
exit within 10 s (`ivr.cli.lifecycle.GRACE`), with its documented code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer, free_port
from tests.campaigntools import person
from tests.tcpproxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
#: The grace period, and what a loaded test machine may add to it.
GRACE = 10.0
SLACK = 5.0


async def start_worker(tmp_path: Path, **env: str) -> asyncio.subprocess.Process:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ.update(IVR_CONFIG=str(sandbox.env_file()), IVR_AGI_PORT=str(free_port()), **env)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "worker", "--name", f"w{free_port()}", "--capacity", "4",
        env=environ, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )  # fmt: skip


async def ready(worker: asyncio.subprocess.Process) -> None:
    """Wait for the worker's "worker NAME: N channels" line."""
    assert worker.stderr is not None
    line = await asyncio.wait_for(worker.stderr.readline(), 60)
    assert b"channels" in line, line


async def stopped_within(worker: asyncio.subprocess.Process, seconds: float) -> tuple[int, str]:
    """SIGTERM, then the exit code and stderr; fails if it takes longer than `seconds`."""
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(worker.communicate(), seconds + 30)
    took = time.monotonic() - started
    assert took <= seconds, f"exited {took:.1f} s after SIGTERM"
    assert worker.returncode is not None
    return worker.returncode, err.decode()


async def test_redis_unreachable_at_start_exits_6(sandbox_config: Config, tmp_path: Path) -> None:
    started = time.monotonic()
    worker = await start_worker(tmp_path, IVR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    _, err = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 6, err
    assert time.monotonic() - started < 15
    assert "Traceback" not in err.decode()


async def test_sigterm_with_redis_gone_under_an_idle_worker(
    sandbox_config: Config, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as server:
        worker = await start_worker(tmp_path, IVR_REDIS_URL=server.url)
        await ready(worker)
    # Redis is gone: every write of the worker now retries.
    code, err = await stopped_within(worker, GRACE + SLACK)
    assert code == 0 and "Traceback" not in err, err


async def test_sigterm_with_asterisk_gone(
    sandbox_config: Config, redis_server: RedisServer, tmp_path: Path
) -> None:
    proxy = TcpProxy(sandbox_config.ami_host, sandbox_config.ami_port)
    await proxy.start()
    worker = await start_worker(
        tmp_path, IVR_REDIS_URL=redis_server.url, IVR_AMI_PORT=str(proxy.port)
    )
    try:
        await ready(worker)
        await proxy.close()  # the AMI link is down, reconnecting
        code, err = await stopped_within(worker, GRACE + SLACK)
    finally:
        await proxy.close()
    assert code == 0 and "Traceback" not in err, err


async def test_sigterm_mid_campaign(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, tmp_path: Path
) -> None:
    """Calls ringing for a minute: the worker stops taking calls, waits its grace period for
    them, then exits; Asterisk keeps the calls for the next worker to follow."""
    people = [person(f"p{i}", "nurse", f"2{i:03d}") for i in range(3)]  # ring for ever
    spec = CampaignSpec(messages={"fr": "Alerte."}, ring_timeout=60, attempts=1)
    worker = await start_worker(tmp_path, IVR_REDIS_URL=redis_server.url)
    await ready(worker)
    cid = await store.create(db, spec, people)
    deadline = time.monotonic() + 30
    while (await db.zcard(f"ivr:campaign:{cid}:leases")) < 3:
        assert time.monotonic() < deadline, "the calls never started"
        await asyncio.sleep(0.1)  # polling Redis for a state, not waiting for time
    code, err = await stopped_within(worker, GRACE + SLACK)
    assert code == 0 and "Traceback" not in err, err
    assert "stopped after 10 s" in err
