"""The roster: Person as JSON, and RosterStore on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from ivr.keys import roster_current_key, roster_people_prefix
from ivr.staff import roster
from ivr.staff.csvfile import parse_roster
from ivr.staff.roster import Person, RosterError, RosterStore
from tests.staff.test_csvfile import ENGLISH, FRENCH

# -- JSON round trip --------------------------------------------------------------------


def test_person_json() -> None:
    plain = Person(id="A001", name="Hélène Lefèvre", role="nurse", unit="", phones=("0612345678",))
    assert plain.to_json() == '{"i":"A001","n":"Hélène Lefèvre","r":"nurse","p":["0612345678"]}'
    for person in [plain, *parse_roster(FRENCH.encode()), *parse_roster(ENGLISH.encode())]:
        assert Person.from_json(person.to_json()) == person
        assert len(person.to_json().encode()) < 160


# -- RosterStore on a real redis-server ---------------------------------------------------


def staff(count: int, prefix: str = "S") -> list[Person]:
    return [
        Person(
            id=f"{prefix}{i:05d}",
            name=f"Staff {i}",
            role=("nurse", "doctor")[i % 2],
            unit="urgences",
            phones=(f"06{i:08d}",),
            on_call=i % 10 == 0,
            backup=f"{prefix}{i + 1:05d}" if i % 7 == 0 else None,
        )
        for i in range(count)
    ]


async def roster_keys(db: aioredis.Redis) -> list[str]:
    return sorted([key async for key in db.scan_iter(match=f"{roster_people_prefix}*")])


@pytest.mark.integration
async def test_store_empty_before_any_import(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    assert await store.load() == []
    assert (await store.count(), await store.version(), await store.get("S1")) == (0, None, None)


@pytest.mark.integration
async def test_store_replace_then_load(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    people = staff(roster.BATCH * 2 + 500)  # several batches
    version = await store.replace(reversed(people))
    assert await store.version() == version
    assert await store.load() == people  # ordered by id
    assert await store.count() == len(people)
    assert await store.get("S00007") == people[7]
    assert await store.get("nobody") is None
    key = roster_people_prefix + version
    assert await roster_keys(db) == [key]
    assert await db.ttl(key) == -1  # the pending-import expiry is gone


@pytest.mark.integration
async def test_second_replace_swaps_and_drops_the_old_hash(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    first = await store.replace(staff(3000))
    second_people = staff(10, prefix="T")
    second = await store.replace(second_people)
    assert second != first
    assert await db.get(roster_current_key) == second
    assert await roster_keys(db) == [roster_people_prefix + second]
    assert await store.load() == second_people


@pytest.mark.integration
async def test_failed_replace_leaves_the_old_roster(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    old_people = staff(50)
    old = await store.replace(old_people)

    def failing() -> Iterator[Person]:
        yield from staff(roster.BATCH * 2 + 10, prefix="N")  # two batches written
        raise RuntimeError("HR database went away")

    with pytest.raises(RuntimeError, match="went away"):
        await store.replace(failing())
    with pytest.raises(RosterError, match="duplicate id 'N00001'"):
        await store.replace([*staff(roster.BATCH + 5, prefix="N"), staff(2, prefix="N")[1]])
    assert await store.version() == old
    assert await store.load() == old_people
    assert await roster_keys(db) == [roster_people_prefix + old]


@pytest.mark.integration
async def test_readers_see_old_or_new_never_half(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    await store.replace(staff(100))
    seen: set[int] = set()
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.add(await store.count())
            seen.add(len(await store.load()))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await store.replace(staff(roster.BATCH * 3, prefix="R"))
    await store.replace(staff(100))
    done.set()
    await watcher
    assert seen <= {100, roster.BATCH * 3}


@pytest.mark.integration
async def test_flip_refuses_an_incomplete_hash(db: aioredis.Redis) -> None:
    store = RosterStore(db)
    old = await store.replace(staff(10))
    write = store._write

    async def lossy(key: str, batch: list[Person]) -> None:
        await write(key, batch[1:])  # as if part of the hash had expired meanwhile

    store._write = lossy  # type: ignore[method-assign]
    with pytest.raises(RosterError, match="holds 19 people, not 20: import not applied"):
        await store.replace(staff(20, prefix="X"))
    assert await store.version() == old
    assert await roster_keys(db) == [roster_people_prefix + old]
