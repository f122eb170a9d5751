"""Changing a running campaign: extending it to its next groups, on a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from ivr.campaign import ops, store
from ivr.campaign import report as reports
from ivr.campaign.spec import CampaignSpec, Group
from ivr.campaign.store import CampaignConflict
from tests.campaigntools import person

STAFF = [
    person("n1", "nurse", "0611111111"),
    person("n2", "nurse", "0622222222", unit="rea"),
    person("m1", "midwife", "0633333333", backup="m2"),
    person("m2", "midwife", "0644444444"),
    person("o1", "orderly", "0655555555", on_call=True),
]


async def test_two_directors_extending_at_once_add_the_group_once(db: Redis) -> None:
    groups = (Group("sages-femmes", ("midwife",)), Group("brancardiers", ("orderly",)))
    spec = CampaignSpec(messages={"fr": "Alerte."}, roles=("nurse",), groups=groups)
    cid = await store.create(db, spec, STAFF)
    assert await ops.newcomers(db, cid, STAFF, groups[0]) == 2
    got = await asyncio.gather(
        *(ops.extend(db, cid, STAFF) for _ in range(2)), return_exceptions=True
    )
    done = [g for g in got if isinstance(g, ops.Extension)]
    refused = [g for g in got if isinstance(g, CampaignConflict)]
    # One adds the midwives; the other either lost the race (conflict) or, coming after it,
    # extended to the next group: never the same group twice.
    assert len(done) + len(refused) == 2
    assert done[0].label == "sages-femmes" and done[0].added == 2
    if len(done) == 2:
        assert done[1].label == "brancardiers" and done[1].added == 1
    report = await reports.report(db, cid)
    assert report["total"] == 2 + 2 + (1 if len(done) == 2 else 0)
    # The callback line finds the newcomers by their number.
    assert await store.find_by_number(db, cid, "+33 6 33 33 33 33") == "m1"
    assert await ops.newcomers(db, cid, STAFF, groups[0]) == 0


async def test_extending_to_given_targets_uses_no_group(db: Redis) -> None:
    spec = CampaignSpec(messages={"fr": "Alerte."}, roles=("nurse",), units=("urgences",),
                        groups=(Group("réa", units=("rea",)),))  # fmt: skip
    cid = await store.create(db, spec, STAFF)
    done = await ops.extend(db, cid, STAFF, targets=Group(roles=("orderly",)))
    assert (done.added, done.label, done.groups_left) == (1, "orderly", 1)
    left = await ops.groups_left(db, cid)
    assert [g.name for g in left] == ["réa"]
    await store.stop(db, cid)
    with pytest.raises(CampaignConflict, match="stopped"):
        await ops.extend(db, cid, STAFF)
