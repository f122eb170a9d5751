"""The live view of one campaign for the console: a snapshot, then what changed.

`CampaignFeed` follows the campaign's event stream with XREAD BLOCK (no polling of counts):
each batch of new events becomes an update carrying the new counts, the events the dashboard
draws its curve from, and the people those events touched. Who is being called right now is
not an event (a claim writes a lease, not a log entry), so each round also compares the
campaign's leases with the last ones seen. No HTTP here: `ivr.api.console` turns this
into server-sent events.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from ivr.campaign import progress, report
from ivr.campaign.state import PersonState
from ivr.campaign.store import get_spec, require
from ivr.keys import campaign_key
from ivr.staff.roster import Person

#: Event types the dashboard uses (the curve, the timeline, an extension to reload the
#: people); attempts stay server-side.
LIVE_TYPES = frozenset(
    {"started", "final", "eta", "quota_met", "quota", "stopped", "resumed", "done", "escalated",
     "extended"}
)  # fmt: skip
#: Largest XRANGE/XREAD batch.
BATCH = 5000


def _event(entry_id: str, fields: dict[str, str]) -> dict[str, str]:
    return {"id": entry_id, **fields}


class CampaignFeed:
    """Snapshot then updates of campaign `cid`; one per dashboard connection."""

    def __init__(self, redis: Redis, cid: str) -> None:
        self.redis, self.cid = redis, cid
        self.events_key = campaign_key(cid, "events")
        #: Id of the last event sent.
        self.last = "0-0"
        #: People being called at the last look.
        self.calling: set[str] = set()
        #: What each person's plan steps gave, from every event read.
        self.history = progress.History()
        self.steps: tuple[str, ...] = ()

    async def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard shows. The event log is read first: state read after it is
        as new or newer, and an update re-sending a person is harmless."""
        await require(self.redis, self.cid)
        events: list[dict[str, str]] = []
        start = "-"
        while batch := await self.redis.xrange(self.events_key, min=start, count=BATCH):
            for entry_id, raw in cast(list[tuple[str, dict[str, str]]], batch):
                self.last = entry_id
                self.history.add(raw)
                if raw.get("type") in LIVE_TYPES:
                    events.append(_event(entry_id, raw))
            start = f"({self.last}"
        self.steps = (await get_spec(self.redis, self.cid)).steps()
        people = await report.people(self.redis, self.cid, self.history)
        self.calling = await self._calling()
        return {
            "campaign": self.cid,
            "report": await report.report(self.redis, self.cid),
            "events": events,
            "people": people,
            "calling": sorted(self.calling),
        }

    async def next(self, block_ms: int = 1000) -> dict[str, Any] | None:
        """Wait up to `block_ms` for new events; the update, or None if nothing changed."""
        got = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            await self.redis.xread({self.events_key: self.last}, count=BATCH, block=block_ms),
        )
        events: list[dict[str, str]] = []
        touched: set[str] = set()
        for _, entries in got or []:
            for entry_id, fields in entries:
                self.last = entry_id
                self.history.add(fields)
                touched.update(fields[k] for k in ("pid", "backup") if fields.get(k))
                if fields.get("type") in LIVE_TYPES:
                    events.append(_event(self.last, fields))
        calling = await self._calling()
        touched |= calling ^ self.calling
        self.calling = calling
        # The counts change only with an event or a call starting or ending: a quiet second
        # costs two cheap reads, not a report.
        if not touched and not events:
            return None
        return {
            "campaign": self.cid,
            "report": await report.report(self.redis, self.cid),
            "events": events,
            "people": await self._rows(sorted(touched)),
            "calling": sorted(calling),
        }

    async def _calling(self) -> set[str]:
        return set(
            cast(list[str], await self.redis.zrange(campaign_key(self.cid, "leases"), 0, -1))
        )

    async def _rows(self, pids: list[str]) -> list[dict[str, Any]]:
        if not pids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(campaign_key(self.cid, "people"), pids)
        pipe.hmget(campaign_key(self.cid, "state"), pids)
        records, raw_states = cast(list[list[str | None]], await pipe.execute())
        queued = await progress.queues(self.redis, self.cid, pids, len(self.steps))
        rows = []
        for pid, record, raw in zip(pids, records, raw_states, strict=True):
            if record is None:
                continue
            state = PersonState.decode(raw)
            plan = progress.plan_of(pid, self.steps, state, self.history, queued)
            rows.append(report.person_row(Person.from_json(record, pid), state, plan))
        return rows
