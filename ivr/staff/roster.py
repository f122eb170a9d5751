"""The staff roster: who is called, kept in Redis, replaced all at once.

`Person` is one member of staff; `RosterStore` keeps the roster in Redis and `replace` writes a
new roster beside the old one and flips a pointer, so a campaign never starts on half a roster.
Reading and writing the HR CSV export is `ivr.staff.csvfile`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ivr.errors import IvrError
from ivr.keys import roster_current_key, roster_people_prefix
from ivr.numbers import is_mobile

#: The roster tag of the crisis cell: after pressing 1 they are bridged into its conference.
CRISIS_TAG = "crisis_cell"
#: People per write: one round trip each.
BATCH = 2000
#: A half-written roster hash expires by itself if its import dies without cleaning up.
PENDING_TTL = 3600


class RosterError(IvrError):
    """A roster file or import was refused; `problems` lists (line number, reason)."""

    error_id = "roster_error"
    exit_code = 2

    def __init__(
        self, message: str, problems: list[tuple[int, str]] | None = None, **details: Any
    ) -> None:
        super().__init__(message, **details)
        self.problems: list[tuple[int, str]] = problems or []


@dataclass(frozen=True, slots=True)
class Person:
    """One member of staff. `parse_roster` is the checking constructor: this is a plain value."""

    id: str
    name: str
    #: Lower-case [a-z0-9_] ("nurse", "sage_femme"): what campaign roles and quotas name.
    role: str
    unit: str
    #: Normalized, in calling order; 1 to 5 of them.
    phones: tuple[str, ...]
    language: str = "fr"
    on_call: bool = False
    #: Id of the person called instead when this one cannot be reached.
    backup: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    #: The number SMS go to, when it is not the first mobile of `phones` (`sms_number`).
    sms: str | None = None
    #: Where an informative mail goes (when the installation has a mail server).
    email: str | None = None

    def sms_number(self) -> str | None:
        """Where this person's SMS go: `sms`, else the first mobile number of `phones`."""
        return self.sms or next((n for n in self.phones if is_mobile(n)), None)

    @property
    def single_number(self) -> bool:
        """One number for calls and SMS alike: a flat battery or a lost phone and nothing
        reaches them (flagged at import)."""
        return len({*self.phones, *([self.sms] if self.sms else [])}) <= 1

    def to_json(self, *, with_id: bool = True) -> str:
        """Compact JSON, short keys, defaults left out (about 100 bytes for most people).

        The one encoding of a person: the roster keeps it with the id (`i`), a campaign keeps
        it without (its hash field is the id), and the scheduler's Lua reads `r` (role), `p`
        (phones), `o` (on call) and `b` (backup) from it.
        """
        record: dict[str, Any] = {"i": self.id} if with_id else {}
        record.update(n=self.name, r=self.role, p=self.phones)
        if self.unit:
            record["u"] = self.unit
        if self.language != "fr":
            record["l"] = self.language
        if self.on_call:
            record["o"] = 1
        if self.backup:
            record["b"] = self.backup
        if self.tags:
            record["t"] = sorted(self.tags)
        if self.sms:
            record["s"] = self.sms
        if self.email:
            record["e"] = self.email
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, person_id: str | None = None) -> Person:
        """The person from `to_json()`; `person_id` when it was encoded without its id."""
        record = json.loads(text)
        return cls(
            id=record["i"] if person_id is None else person_id,
            name=record["n"],
            role=record["r"],
            unit=record.get("u", ""),
            phones=tuple(record["p"]),
            language=record.get("l", "fr"),
            on_call=bool(record.get("o", 0)),
            backup=record.get("b"),
            tags=frozenset(record.get("t", ())),
            sms=record.get("s"),
            email=record.get("e"),
        )


# -- Redis --------------------------------------------------------------------------------

# Checks the new hash is whole (it may have expired if the import stalled for an hour), then
# flips the pointer and drops the old version, in one step no reader can see half of.
_FLIP = """
local count = redis.call('HLEN', KEYS[2])
if count ~= tonumber(ARGV[2]) then
    return redis.error_reply('roster: new version holds ' .. count .. ' people, not ' .. ARGV[2])
end
redis.call('PERSIST', KEYS[2])
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if old and old ~= ARGV[1] then
    redis.call('UNLINK', ARGV[3] .. old)
end
return old
"""
# After a failure: drop the new hash unless the flip did happen (its reply may be what was lost).
_ABORT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return redis.call('UNLINK', KEYS[2])
end
return 0
"""
#: How many times a read retries when an import swaps the roster under it.
_READ_ATTEMPTS = 5


class RosterStore:
    """The roster in Redis: one hash per version (id -> Person JSON), a key naming the current one.

    `replace` writes the new version beside the old and then flips `roster_current_key`:
    readers see the old roster or the new one, never a mix, and a failed import changes nothing.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._flip = redis.register_script(_FLIP)
        self._abort = redis.register_script(_ABORT)

    async def replace(self, people: Iterable[Person]) -> str:
        """Make `people` the roster; return the new version id. Ids must be unique."""
        await self._drop_leftovers()
        version = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"
        key = roster_people_prefix + version
        ids: set[str] = set()
        try:
            batch: list[Person] = []
            for person in people:
                if person.id in ids:
                    raise RosterError(f"roster: duplicate id {person.id!r}")
                ids.add(person.id)
                batch.append(person)
                if len(batch) == BATCH:
                    await self._write(key, batch)
                    batch = []
            if batch:
                await self._write(key, batch)
            try:
                await self._flip(
                    keys=[roster_current_key, key], args=[version, len(ids), roster_people_prefix]
                )
            except ResponseError as exc:
                raise RosterError(f"{exc}: import not applied") from exc
        except BaseException:
            with contextlib.suppress(Exception):
                await self._abort(keys=[roster_current_key, key], args=[version])
            raise
        return version

    async def _drop_leftovers(self) -> None:
        """Remove roster versions an import left behind with no expiry (written before
        imports set it atomically): only the version in force lives without one."""
        current = await self.version()
        async for key in self._redis.scan_iter(match=f"{roster_people_prefix}*", count=100):
            if key != f"{roster_people_prefix}{current}" and await self._redis.ttl(key) == -1:
                await self._redis.unlink(key)

    async def _write(self, key: str, batch: list[Person]) -> None:
        # One HSET of many fields per batch: a command per person costs redis-py 6 times more.
        # MULTI: the hash never exists without its expiry, even if Redis dies in between.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={p.id: p.to_json() for p in batch})
        pipe.expire(key, PENDING_TTL)
        await pipe.execute()

    async def version(self) -> str | None:
        """The id of the roster in force, None before the first import."""
        return cast(str | None, await self._redis.get(roster_current_key))

    async def load(self) -> list[Person]:
        """Everyone, ordered by id; [] before the first import."""
        for _ in range(_READ_ATTEMPTS):
            version = await self.version()
            if version is None:
                return []
            raw = cast(dict[str, str], await self._redis.hgetall(roster_people_prefix + version))
            # Empty: an import may have dropped this version between the two reads.
            if raw or await self.version() == version:
                return sorted(map(Person.from_json, raw.values()), key=attrgetter("id"))
        raise RosterError("roster: changed during every read; are imports running in a loop?")

    async def get(self, pid: str) -> Person | None:
        """One person by id, None if not in the roster."""
        for _ in range(_READ_ATTEMPTS):
            version = await self.version()
            if version is None:
                return None
            raw = cast(str | None, await self._redis.hget(roster_people_prefix + version, pid))
            if raw is not None:
                return Person.from_json(raw)
            if await self.version() == version:
                return None
        raise RosterError("roster: changed during every read; are imports running in a loop?")

    async def count(self) -> int:
        """How many people the roster in force holds."""
        for _ in range(_READ_ATTEMPTS):
            version = await self.version()
            if version is None:
                return 0
            count = int(await self._redis.hlen(roster_people_prefix + version))
            if count or await self.version() == version:
                return count
        raise RosterError("roster: changed during every read; are imports running in a loop?")
