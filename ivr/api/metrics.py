"""`/metrics`: the service's state for Prometheus, written by prometheus_client.

Read from Redis on each scrape (the campaigns' counters, the workers' heartbeats), plus what
this process knows itself: its AMI link, its speech cache counters if it renders speech, and
the process's own metrics (CPU, memory, open files, GC) from prometheus_client's default
registry. prometheus_client chooses the format the scraper asks for: Prometheus text 0.0.4 by
default, OpenMetrics 1.0 on `Accept: application/openmetrics-text`.

prometheus_client collects synchronously and our Redis client is asynchronous, so a scrape is
two steps: `scrape()` gathers every number in one Redis round trip, then the `Scrape` it
returns is the collector prometheus_client reads them from.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr import keys
from ivr.campaign.scheduler import TIERS
from ivr.health.heartbeat import Heartbeat
from ivr.keys import campaign_key
from ivr.outcomes import Outcome
from ivr.voice.tts import Speaker

#: What a scraper gets without asking (the Prometheus text format, as before issue 12)...
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: ...and what it may ask for with `Accept`.
CONTENT_TYPE_OPENMETRICS = OPENMETRICS
AMI_STATES = ("up", "down", "unconfigured")


@dataclass(frozen=True)
class CampaignNumbers:
    """One active campaign's numbers at the scrape."""

    cid: str
    counts: dict[str, int]
    in_flight: int
    queued: int
    due: int


@dataclass(frozen=True)
class WorkerBeat:
    """A dialer worker's last heartbeat."""

    name: str
    asterisk: str
    capacity: float
    in_flight: float
    ami_up: float
    seen: float


@dataclass
class Scrape:
    """The numbers of one scrape, as a prometheus_client collector."""

    ami_state: str
    #: (hits, misses) of the speech cache; None when this process renders no speech.
    tts: tuple[int, int] | None = None
    redis_up: bool = False
    campaigns: list[CampaignNumbers] = field(default_factory=list)
    workers: list[WorkerBeat] = field(default_factory=list)

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        ami = GaugeMetricFamily(
            "ivr_ami_link", "AMI link state of this service (1 for the current one).",
            labels=["state"],
        )  # fmt: skip
        for state in AMI_STATES:
            ami.add_metric([state], 1 if state == self.ami_state else 0)
        yield ami
        if self.tts is not None:
            yield CounterMetricFamily(
                "ivr_tts_cache_hits", "Renders served from the speech cache.", self.tts[0]
            )
            yield CounterMetricFamily(
                "ivr_tts_cache_misses", "Renders that ran text-to-speech.", self.tts[1]
            )
        if self.campaigns:
            yield from _campaign_families(self.campaigns)
        if self.workers:
            yield from _worker_families(self.workers)
        yield GaugeMetricFamily(
            "ivr_redis_up", "1 if Redis answered this scrape.", 1 if self.redis_up else 0
        )


async def scrape(redis: Redis, *, ami_state: str, speaker: Speaker | None = None) -> Scrape:
    """Gather the numbers. Redis being down is a metric (`ivr_redis_up 0`), not an error."""
    got = Scrape(ami_state, None if speaker is None else (speaker.hits, speaker.misses))
    try:
        campaigns, workers = await _from_redis(redis)
    except RedisError:
        return got
    got.redis_up, got.campaigns, got.workers = True, campaigns, workers
    return got


async def respond(request: web.Request, numbers: Scrape) -> web.StreamResponse:
    """The answer to a scrape, in the format its `Accept` asks for (compressed if accepted)."""
    return await make_aiohttp_handler(numbers)(request)


async def _from_redis(redis: Redis) -> tuple[list[CampaignNumbers], list[WorkerBeat]]:
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
    heartbeats = cast(dict[str, str], got.pop())
    per = 2 + 2 * len(TIERS)
    campaigns = []
    for i, cid in enumerate(active):
        counts = {k: int(v) for k, v in cast(dict[str, str], got[per * i]).items()}
        queued = sum(int(got[per * i + 2 + 2 * t]) for t in range(len(TIERS)))
        due = sum(int(got[per * i + 3 + 2 * t]) for t in range(len(TIERS)))
        campaigns.append(CampaignNumbers(cid, counts, int(got[per * i + 1]), queued, due))
    workers = [beat for name, raw in sorted(heartbeats.items()) if (beat := _beat(name, raw))]
    return campaigns, workers


def _beat(name: str, raw: str) -> WorkerBeat | None:
    beat = Heartbeat.from_json(raw)
    if beat is None:
        return None  # a heartbeat this version cannot read: skip it rather than fail the scrape
    return WorkerBeat(
        name,
        beat.asterisk,
        float(beat.capacity),
        float(beat.in_flight),
        1.0 if beat.ami_up else 0.0,
        beat.seen,
    )


def _campaign_families(campaigns: list[CampaignNumbers]) -> Iterator[Metric]:
    def gauge(name: str, text: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=["campaign", *extra])

    in_flight = gauge("ivr_campaign_calls_in_flight", "Calls in progress (leases held).")
    depth = gauge("ivr_campaign_queue_depth", "People waiting for a call, due or later.")
    due = gauge("ivr_campaign_queue_due", "People waiting whose call is due now.")
    people = gauge("ivr_campaign_people", "People targeted (backups included once added).")
    pending = gauge("ivr_campaign_people_pending", "People without a final outcome yet.")
    final = gauge("ivr_campaign_people_final", "People by final outcome.", "outcome")
    calls = CounterMetricFamily(
        "ivr_campaign_calls", "Calls (attempts) by outcome.", labels=["campaign", "outcome"]
    )
    for c in campaigns:
        in_flight.add_metric([c.cid], c.in_flight)
        depth.add_metric([c.cid], c.queued)
        due.add_metric([c.cid], c.due)
        people.add_metric([c.cid], c.counts.get("total", 0))
        pending.add_metric([c.cid], c.counts.get("open", 0))
        for outcome in Outcome:
            final.add_metric([c.cid, outcome], c.counts.get(f"final:{outcome}", 0))
        seen = {k.removeprefix("attempt:") for k in c.counts if k.startswith("attempt:")}
        for kind in [*Outcome, *sorted(seen - set(Outcome))]:
            calls.add_metric([c.cid, kind], c.counts.get(f"attempt:{kind}", 0))
    yield from (in_flight, depth, due, people, pending, final, calls)


def _worker_families(workers: list[WorkerBeat]) -> Iterator[Metric]:
    labels = ["worker", "asterisk"]
    channels = GaugeMetricFamily(
        "ivr_worker_channels", "Channels a dialer worker keeps busy at most.", labels=labels
    )
    in_use = GaugeMetricFamily(
        "ivr_worker_channels_in_use", "Calls a dialer worker has in flight.", labels=labels
    )
    ami_up = GaugeMetricFamily(
        "ivr_worker_ami_up", "1 if the worker's AMI link was up at its heartbeat.", labels=labels
    )
    seen = GaugeMetricFamily(
        "ivr_worker_heartbeat_timestamp_seconds", "Unix time of the last heartbeat.",
        labels=labels,
    )  # fmt: skip
    for w in workers:
        channels.add_metric([w.name, w.asterisk], w.capacity)
        in_use.add_metric([w.name, w.asterisk], w.in_flight)
        ami_up.add_metric([w.name, w.asterisk], w.ami_up)
        seen.add_metric([w.name, w.asterisk], w.seen)
    yield from (channels, in_use, ami_up, seen)
