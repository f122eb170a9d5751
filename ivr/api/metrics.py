"""`/metrics`: the service's state in Prometheus text format (version 0.0.4).

Read from Redis on each scrape (the campaigns' counters, the workers' heartbeats), plus what
this process knows itself: its AMI link and, if it renders speech, its cache counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr import keys
from ivr.campaign.scheduler import TIERS
from ivr.health.heartbeat import Heartbeat
from ivr.keys import campaign_key
from ivr.outcomes import Outcome
from ivr.voice.tts import Speaker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
AMI_STATES = ("up", "down", "unconfigured")


class _Writer:
    """Samples grouped by metric family, as the format requires, in first-seen order."""

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def metric(self, name: str, kind: str, help_text: str, value: float, **labels: str) -> None:
        family = self._families.setdefault(
            name, [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        )
        shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        family.append(
            f"{name}{{{shown}}} {_number(value)}" if shown else f"{name} {_number(value)}"
        )

    def text(self) -> str:
        return "".join(line + "\n" for lines in self._families.values() for line in lines)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


async def render(redis: Redis, *, ami_state: str, speaker: Speaker | None = None) -> str:
    """The metrics text. Redis being down is a metric (`ivr_redis_up 0`), not an error."""
    out = _Writer()
    for state in AMI_STATES:
        out.metric(
            "ivr_ami_link",
            "gauge",
            "AMI link state of this service (1 for the current one).",
            1 if state == ami_state else 0,
            state=state,
        )
    if speaker is not None:
        out.metric(
            "ivr_tts_cache_hits_total",
            "counter",
            "Renders served from the speech cache.",
            speaker.hits,
        )
        out.metric(
            "ivr_tts_cache_misses_total",
            "counter",
            "Renders that ran text-to-speech.",
            speaker.misses,
        )
    try:
        await _from_redis(redis, out)
    except RedisError:
        out.metric("ivr_redis_up", "gauge", "1 if Redis answered this scrape.", 0)
    else:
        out.metric("ivr_redis_up", "gauge", "1 if Redis answered this scrape.", 1)
    return out.text()


async def _from_redis(redis: Redis, out: _Writer) -> None:
    # Gather first, write after: a scrape that fails half-way must not emit half the series.
    active = sorted(cast(set[str], await redis.smembers(keys.active_campaigns_key)), key=int)
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    for cid in active:
        pipe.hgetall(campaign_key(cid, "counts"))
        pipe.zcard(campaign_key(cid, "leases"))
        for tier in TIERS:
            pipe.zcard(campaign_key(cid, tier))
            pipe.zcount(campaign_key(cid, tier), "-inf", now_ms)
    pipe.hgetall(keys.workers_key)
    got = await pipe.execute()
    workers = cast(dict[str, str], got.pop())
    per = 2 + 2 * len(TIERS)
    for i, cid in enumerate(active):
        counts = {k: int(v) for k, v in cast(dict[str, str], got[per * i]).items()}
        in_flight = int(got[per * i + 1])
        queued = sum(int(got[per * i + 2 + 2 * t]) for t in range(len(TIERS)))
        due = sum(int(got[per * i + 3 + 2 * t]) for t in range(len(TIERS)))
        _campaign(out, cid, counts, in_flight, queued, due)
    for name, raw in sorted(workers.items()):
        _worker(out, name, raw)


def _campaign(
    out: _Writer, cid: str, counts: dict[str, int], in_flight: int, queued: int, due: int
) -> None:
    out.metric(
        "ivr_campaign_calls_in_flight",
        "gauge",
        "Calls in progress (leases held).",
        in_flight,
        campaign=cid,
    )
    out.metric(
        "ivr_campaign_queue_depth",
        "gauge",
        "People waiting for a call, due or later.",
        queued,
        campaign=cid,
    )
    out.metric(
        "ivr_campaign_queue_due",
        "gauge",
        "People waiting whose call is due now.",
        due,
        campaign=cid,
    )
    out.metric(
        "ivr_campaign_people",
        "gauge",
        "People targeted (backups included once added).",
        counts.get("total", 0),
        campaign=cid,
    )
    out.metric(
        "ivr_campaign_people_pending",
        "gauge",
        "People without a final outcome yet.",
        counts.get("open", 0),
        campaign=cid,
    )
    for outcome in Outcome:
        out.metric(
            "ivr_campaign_people_final",
            "gauge",
            "People by final outcome.",
            counts.get(f"final:{outcome}", 0),
            campaign=cid,
            outcome=outcome,
        )
    for kind in _outcomes(counts):
        out.metric(
            "ivr_campaign_calls_total",
            "counter",
            "Calls (attempts) by outcome.",
            counts.get(f"attempt:{kind}", 0),
            campaign=cid,
            outcome=kind,
        )


def _outcomes(counts: dict[str, int]) -> Iterable[str]:
    seen = {k.removeprefix("attempt:") for k in counts if k.startswith("attempt:")}
    return [*Outcome, *sorted(seen - set(Outcome))]


def _worker(out: _Writer, name: str, raw: str) -> None:
    beat = Heartbeat.from_json(raw)
    if beat is None:
        return  # a heartbeat this version cannot read: skip it rather than fail the scrape
    labels = {"worker": name, "asterisk": beat.asterisk}
    capacity, in_flight = float(beat.capacity), float(beat.in_flight)
    ami_up, seen = (1.0 if beat.ami_up else 0.0), beat.seen
    out.metric(
        "ivr_worker_channels",
        "gauge",
        "Channels a dialer worker keeps busy at most.",
        capacity,
        **labels,
    )
    out.metric(
        "ivr_worker_channels_in_use",
        "gauge",
        "Calls a dialer worker has in flight.",
        in_flight,
        **labels,
    )
    out.metric(
        "ivr_worker_ami_up",
        "gauge",
        "1 if the worker's AMI link was up at its heartbeat.",
        ami_up,
        **labels,
    )
    out.metric(
        "ivr_worker_heartbeat_timestamp_seconds",
        "gauge",
        "Unix time of the last heartbeat.",
        seen,
        **labels,
    )
