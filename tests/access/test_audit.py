"""The audit log's entries are written once, even when the command is sent again after its
reply was lost (through Sentinel, `DeadlineRetry` does at a failover). Real redis-server, a TCP
proxy that loses the reply."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from ivr.access import audit
from ivr.db import DeadlineRetry, connect
from ivr.sandbox.redisserver import RedisServer
from tests.tcpproxy import TcpProxy


async def test_an_entry_resent_after_a_lost_reply_is_written_once(
    redis_server: RedisServer, db: Redis
) -> None:
    proxy = TcpProxy("127.0.0.1", redis_server.port)
    await proxy.start()
    lossy = connect(f"redis://127.0.0.1:{proxy.port}")
    lossy.set_retry(DeadlineRetry(10.0))
    try:
        release = proxy.lose_reply_to(b"ivr:audit:written:")
        writing = asyncio.create_task(
            audit.record(lossy, "phone:d0", "campaign.start", target="7", details={"line": "x"})
        )
        await proxy.request_passed.wait()
        release.set()
        entry_id = await writing
        assert proxy.connections == 2, "the reply was lost and the entry sent again"
        [entry] = await audit.entries(db)
        assert (entry["id"], entry["action"], entry["target"]) == (entry_id, "campaign.start", "7")
        assert entry["details"] == {"line": "x"}
    finally:
        await lossy.aclose()
        await proxy.close()
