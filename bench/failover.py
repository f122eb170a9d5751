"""Time from a SIGKILL of the Redis primary to the next write of the service, through Sentinel.

    .venv/bin/python bench/failover.py
    .venv/bin/python bench/failover.py --down-after 5000 --runs 3

A private primary, one replica and three Sentinels (`ivr.sandbox.sentinel`) with Sentinel's
down-after-milliseconds at `--down-after`; a client built as the service builds it
(`ivr.db.connect_sentinel`) writes without pause, each write waiting for the replica
(`ivr.replication.Replication`) as a worker's results do. The primary is killed; printed is the
time from the kill to the first write the new primary took, for each run (a new cluster each
time).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from ivr.db import connect_sentinel
from ivr.replication import Replication
from ivr.sandbox.sentinel import MASTER, SentinelCluster


async def one_run(down_after_ms: int) -> float:
    with (
        tempfile.TemporaryDirectory() as tmp,
        SentinelCluster(Path(tmp), down_after_ms=down_after_ms) as cluster,
    ):
        client = connect_sentinel(cluster.addresses, MASTER)
        replication = Replication(client)

        async def write(conn: Redis) -> int:
            return int(await conn.incr("n"))

        try:
            for _ in range(100):
                await replication.replicated(write)
            old = cluster.primary()
            killed = time.monotonic()
            old.stop(kill=True)
            await replication.replicated(write)  # retried until the new primary takes it
            took = time.monotonic() - killed
            if cluster.primary().port == old.port:
                raise SystemExit("no failover happened")
            return took
        finally:
            await client.aclose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down-after", type=int, default=5000, help="milliseconds")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = [await one_run(args.down_after) for _ in range(args.runs)]
    print(
        f"down-after-milliseconds {args.down_after}: SIGKILL -> next write "
        + ", ".join(f"{t:.1f} s" for t in times)
        + f" (median {statistics.median(times):.1f} s; the first write after the failover also "
        "waits WAIT's 1 s for a replica the new primary does not have yet)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
