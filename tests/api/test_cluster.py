"""`GET /api/cluster`, the console's "Platform" screen: sites and workers from the heartbeats a
worker writes (`ivr.dialer.heartbeat.beat`), Redis's primary and replicas, each Sentinel's view,
the overall state and the checks behind it; on one Redis server and through a real Sentinel
cluster (a primary, a replica, three Sentinels), and that screen in Chromium through Sentinel
(its French on one server is a step of `test_console_browser`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.api import console_schemas
from ivr.api.validate import Checker
from ivr.config import Config
from ivr.db import connect_sentinel
from ivr.dialer.heartbeat import beat
from ivr.health.heartbeat import Heartbeat
from ivr.sandbox.redisserver import RedisServer
from ivr.sandbox.sentinel import MASTER, SentinelCluster
from tests import browser
from tests.api.test_console_browser import ARTIFACTS
from tests.api.test_http import Api, start_api
from tests.conftest import unavailable


async def _cluster(api: Api) -> dict[str, Any]:
    body: dict[str, Any] = await api.json("GET", "/api/cluster", "viewer")
    assert Checker(console_schemas.CLUSTER).problems(body) == []
    return body


def _checks(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["state"], c["summary"]) for c in body["checks"]}


@pytest.fixture
async def api(db: aioredis.Redis, redis_server: RedisServer) -> AsyncIterator[Api]:
    made = await start_api(db, Config(redis_url=redis_server.url))
    yield made
    await made.client.close()


async def test_one_redis_server_sites_workers_and_a_silent_one(api: Api) -> None:
    await api.error("GET", "/api/cluster", 401, "missing_token", role=None)
    body = await _cluster(api)
    assert body["sites"] == {} and body["sentinel"] is None
    assert body["status"] == "critical", "no worker: no call can be placed"
    assert _checks(body)["workers"][0] == "critical"

    now = time.time()
    await beat(api.db, "a-0", Heartbeat("site-a", 30, 12, True, now - 2, 5.0))
    await beat(api.db, "a-1", Heartbeat("site-a", 30, 0, False, now - 1, 5.0))
    await beat(api.db, "b-0", Heartbeat("site-b", 20, 3, True, now - 60, 5.0))
    body = await _cluster(api)
    assert body["where"] == "redis://127.0.0.1:{}/0".format(
        api.db.connection_pool.connection_kwargs["port"]
    ), "where Redis is, as configured"
    assert body["redis"] == {"primary": None, "role": "master", "replicas": []}
    assert sorted(body["sites"]) == ["site-a", "site-b"]
    a0, a1 = body["sites"]["site-a"]
    assert (a0["worker"], a0["in_flight"], a0["capacity"], a0["ami_up"], a0["silent"]) == (
        "a-0", 12, 30, True, False,
    )  # fmt: skip
    assert 2 <= a0["heard_s_ago"] < 30
    assert (a1["worker"], a1["ami_up"], a1["silent"]) == ("a-1", False, False)
    [b0] = body["sites"]["site-b"]
    assert (b0["worker"], b0["silent"]) == ("b-0", True) and b0["heard_s_ago"] >= 60
    # The state and its reason: one worker without its AMI link, one silent.
    assert body["status"] == "warning"
    state, reason = _checks(body)["workers"]
    assert state == "warning"
    assert "1 alive (a-0)" in reason and "without their AMI link: a-1" in reason
    assert "silent: b-0 for 6" in reason
    assert _checks(body)["redis"][0] == "ok" and _checks(body)["ami"][0] == "ok"


async def test_through_sentinel_replica_lag_and_each_sentinels_view(
    sentinel_cluster: SentinelCluster,
) -> None:
    db = connect_sentinel(sentinel_cluster.addresses, MASTER)
    api = await start_api(db, Config(redis_sentinels=sentinel_cluster.addresses))
    try:
        primary = f"127.0.0.1:{sentinel_cluster.primary().port}"
        replica = f"127.0.0.1:{sentinel_cluster.servers[1].port}"
        await beat(db, "a-0", Heartbeat("site-a", 30, 4, True, time.time(), 5.0))
        body = await _cluster(api)
        assert body["where"].startswith(f"Sentinel master 'ivr' via {sentinel_cluster.env}")
        assert (body["redis"]["primary"], body["redis"]["role"]) == (primary, "master")
        [seen] = body["redis"]["replicas"]
        assert (seen["address"], seen["state"]) == (replica, "online")
        assert seen["lag_s"] >= 0 and seen["bytes_behind"] >= 0
        sentinels = body["sentinel"]["sentinels"]
        assert body["sentinel"]["master"] == MASTER
        assert sorted(s["sentinel"] for s in sentinels) == sorted(
            f"127.0.0.1:{s.port}" for s in sentinel_cluster.sentinels
        )
        for view in sentinels:
            assert (view["primary"], view["down"], view["replicas"]) == (primary, False, 1)
            assert view["sentinels"] == 3
        assert body["status"] == "ok", body["checks"]
        assert [w["worker"] for w in body["sites"]["site-a"]] == ["a-0"]

        # One Sentinel stopped: its error shows in its place, and the state says why.
        gone = sentinel_cluster.sentinels[2]
        gone.stop()
        body = await _cluster(api)
        views = {s["sentinel"]: s for s in body["sentinel"]["sentinels"]}
        assert "error" in views[f"127.0.0.1:{gone.port}"]
        assert "primary" not in views[f"127.0.0.1:{gone.port}"]
        assert sum("error" in s for s in views.values()) == 1
        assert body["status"] == "warning"
        state, reason = _checks(body)["redis"]
        assert (state, reason) == ("warning", f"2 of 3 Sentinels answer, naming {primary}")
    finally:
        await api.client.close()
        await db.aclose()


async def test_the_platform_screen_through_sentinel(sentinel_cluster: SentinelCluster) -> None:
    """In English this time: the replica and its lag, each Sentinel's view, one Sentinel down."""
    if not browser.CHROMIUM.exists():
        unavailable("chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    db = connect_sentinel(sentinel_cluster.addresses, MASTER)
    api = await start_api(db, Config(redis_sentinels=sentinel_cluster.addresses))
    try:
        primary = f"127.0.0.1:{sentinel_cluster.primary().port}"
        replica = f"127.0.0.1:{sentinel_cluster.servers[1].port}"
        gone = sentinel_cluster.sentinels[2]
        gone.stop()
        await beat(db, "a-0", Heartbeat("site-a", 30, 4, True, time.time(), 5.0))
        async with browser.chromium() as page:
            token = api.tokens["viewer"]
            await page.goto(f"{api.client.make_url('/')}#token={token}&lang=en")
            await page.click("[data-tab=cluster]")
            rows = "[...document.querySelectorAll('#cluster-sentinels tr')]"
            # (This click once did nothing: the tabs showed before the console was ready,
            # `hidden` lost to the tabs' `display: flex`; page.click waits until it is shown.)
            await page.until(f"{rows}.length === 3", timeout=30)
            assert await page.text("#cluster-state") == "Overall state: warning"
            assert await page.text("#cluster-checks [data-check=redis]") == (
                f"Redis (warning): 2 of 3 Sentinels answer, naming {primary}"
            )
            assert (await page.text("#cluster-primary")).startswith(
                f"Primary {primary} (role: primary), followed through Sentinel master 'ivr' via"
            )
            [seen] = await page.run(
                "[...document.querySelectorAll('#cluster-replicas tr')].map(r => r.innerText)"
            )
            cells = seen.split("\t")
            assert cells[:2] == [replica, "online"] and cells[2].endswith(" s"), cells
            assert cells[3].endswith(" bytes"), cells
            views = {
                line.split("\t")[0]: line.split("\t")
                for line in await page.run(f"{rows}.map(r => r.innerText)")
            }
            down = views.pop(f"127.0.0.1:{gone.port}")
            assert down[1:4] == ["—", "—", "—"] and down[4].startswith("unreachable: "), down
            assert [(v[1], v[4]) for v in views.values()] == [(primary, "agrees")] * 2, views
            assert await page.run("document.querySelector('#cluster-no-sentinel').hidden")
            await page.screenshot(ARTIFACTS / "console-cluster-sentinel-en.png")
            assert page.errors == []
    finally:
        await api.client.close()
        await db.aclose()
