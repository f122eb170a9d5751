"""`ivr worker` with IVR_LOG_FORMAT=json: a real worker process calls through the sandbox
Asterisk, and every line it writes on stderr is a JSON object, the call's record with its
campaign, attempt, worker and channel as fields."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.campaign import store
from ivr.campaign.scheduler import attempt_id
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.keys import campaign_key
from ivr.numbers import dial_string
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from tests.campaigntools import person, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

#: Answers at once and presses 1 at once (README, "Simulated phones").
PRESSES_1 = "1071000"


async def test_worker_logs_json_lines_with_the_call_in_fields(
    sandbox_config: Config, redis_server: RedisServer, db: aioredis.Redis
) -> None:
    spec = CampaignSpec(messages={"fr": "Test des journaux."}, amd=False, ask_eta=False)
    cid = await store.create(db, spec, [person("LOG1", "nurse", PRESSES_1)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_CONFIG=str(sandbox.env_file()), IVR_REDIS_URL=redis_server.url, IVR_LOG_FORMAT="json"
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "-v", "worker", "--name", "log-json", "--capacity", "2",
        "--no-lines", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        report = await wait_done(db, cid, timeout=120)
    finally:
        worker.terminate()
        _, err = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, err.decode()[-2000:]
    assert report["available"] == 1
    text = err.decode()
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "ivr.status" and "log-json" in r["message"] for r in records)
    [outcome] = [r for r in records if r.get("campaign_id") == cid and "available" in r["message"]]
    assert outcome == {
        **outcome,
        "level": "INFO",
        "logger": "ivr.dialer.worker",
        "campaign_id": cid,
        "attempt_id": attempt_id(str(await db.hget(campaign_key(cid), "uid")), 0, 1),
        "worker": "log-json",
        "channel": dial_string(sandbox_config.dial_template, PRESSES_1),
    }
    assert sandbox_config.ami_secret not in text
