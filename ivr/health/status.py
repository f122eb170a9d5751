"""`ivr status`: the installation at a glance — the sites (one per Asterisk) and their workers,
Redis's primary and replicas with their lag, and what each Sentinel says."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from ivr.db import sentinel_state
from ivr.health.checks import heartbeats
from ivr.health.heartbeat import FORGOTTEN_AFTER


async def cluster_status(redis: Redis, now: float | None = None) -> dict[str, Any]:
    """Sites, workers, Redis replication and the Sentinels' view, as plain data (`--json`)."""
    now = time.time() if now is None else now
    sites: dict[str, list[dict[str, Any]]] = {}
    for name, beat in sorted((await heartbeats(redis)).items()):
        if beat.age(now) >= FORGOTTEN_AFTER:
            continue
        sites.setdefault(beat.asterisk, []).append(
            {
                "worker": name,
                "in_flight": beat.in_flight,
                "capacity": beat.capacity,
                "ami_up": beat.ami_up,
                "heard_s_ago": round(beat.age(now), 1),
                "silent": beat.silent(now),
            }
        )
    info = await redis.info("replication")
    offset = int(info.get("master_repl_offset", 0))
    replicas = [
        {
            "address": f"{value.get('ip')}:{value.get('port')}",
            "state": value.get("state"),
            "lag_s": int(value.get("lag", 0)),
            "bytes_behind": max(0, offset - int(value.get("offset", 0))),
        }
        for key, value in sorted(info.items())
        if key.startswith("slave") and isinstance(value, dict)
    ]
    pool = redis.connection_pool
    primary = None
    if isinstance(pool, SentinelConnectionPool) and pool.master_address:
        primary = "{}:{}".format(*pool.master_address)
    return {
        "sites": sites,
        "redis": {"primary": primary, "role": info.get("role"), "replicas": replicas},
        "sentinel": await sentinel_state(redis),
    }


def status_lines(status: dict[str, Any], where: str) -> list[str]:
    """The status as a person reads it."""
    red = status["redis"]
    lines = [f"Redis: {where}" + (f", primary {red['primary']}" if red["primary"] else "")]
    if not red["replicas"]:
        lines.append("  no replica")
    for replica in red["replicas"]:
        lines.append(
            f"  replica {replica['address']} {replica['state']}, lag {replica['lag_s']} s, "
            f"{replica['bytes_behind']} B behind"
        )
    for seen in (status["sentinel"] or {}).get("sentinels", []):
        if "error" in seen:
            lines.append(f"Sentinel {seen['sentinel']}: unreachable ({seen['error']})")
        else:
            lines.append(
                f"Sentinel {seen['sentinel']}: primary {seen['primary']}"
                + (" (down)" if seen["down"] else "")
                + f", {seen['replicas']} replica(s), {seen['sentinels']} Sentinel(s)"
            )
    if not status["sites"]:
        lines.append("No worker has been heard of.")
    for site, workers in sorted(status["sites"].items()):
        lines.append(f"Site (Asterisk) {site}: {len(workers)} worker(s)")
        for w in workers:
            state = "SILENT" if w["silent"] else ("AMI up" if w["ami_up"] else "AMI DOWN")
            lines.append(
                f"  {w['worker']}: {w['in_flight']}/{w['capacity']} channels, {state}, "
                f"heard {w['heard_s_ago']:.0f} s ago"
            )
    return lines
