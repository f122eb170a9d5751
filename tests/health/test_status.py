"""`ivr status` through Sentinel: sites and workers, the replica and its lag, each Sentinel."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import redis

from ivr import keys
from ivr.cli.main import main
from ivr.health.heartbeat import Heartbeat
from ivr.sandbox.sentinel import SentinelCluster


def test_status_shows_sites_workers_replicas_and_sentinels(
    sentinel_cluster: SentinelCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary = sentinel_cluster.primary()
    replica = sentinel_cluster.servers[1]
    now = time.time()
    with redis.Redis(port=primary.port) as client:
        client.hset(keys.workers_key, "a-0", Heartbeat("site-a", 30, 12, True, now, 1.0).to_json())
        client.hset(
            keys.workers_key, "b-0", Heartbeat("site-b", 20, 3, True, now - 60, 1.0).to_json()
        )
    for key in [k for k in os.environ if k.startswith("IVR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_REDIS_SENTINELS", sentinel_cluster.env)

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["redis"]["primary"] == f"127.0.0.1:{primary.port}"
    assert status["redis"]["role"] == "master"
    [seen] = status["redis"]["replicas"]
    assert (seen["address"], seen["state"]) == (f"127.0.0.1:{replica.port}", "online")
    assert {s["primary"] for s in status["sentinel"]["sentinels"]} == {f"127.0.0.1:{primary.port}"}
    assert [w["worker"] for w in status["sites"]["site-a"]] == ["a-0"]
    assert status["sites"]["site-b"][0]["silent"] is True

    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"Redis: Sentinel master 'ivr' via {sentinel_cluster.env}, primary 127.0.0.1:{primary.port}"
    )
    assert lines[1].startswith(f"  replica 127.0.0.1:{replica.port} online, lag ")
    assert sum(line.startswith("Sentinel 127.0.0.1:") for line in lines) == 3
    assert "Site (Asterisk) site-a: 1 worker(s)" in lines
    assert any(line.startswith("  a-0: 12/30 channels, AMI up, heard") for line in lines)
    # Heard 60 s before `now`, shown rounded when the command ran (seconds later under load).
    [heard] = [
        m
        for line in lines
        if (m := re.fullmatch(r"  b-0: 3/20 channels, SILENT, heard (\d+) s ago", line))
    ]
    assert 60 <= int(heard[1]) <= 61 + int(time.time() - now), heard[0]
