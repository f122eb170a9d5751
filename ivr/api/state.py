"""What the HTTP handlers share: the application's keys, the AMI link state, the roster cache,
and the helpers that answer JSON, pages and write the audit log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from ivr.access import audit
from ivr.access.tickets import StreamTickets
from ivr.access.tokens import TokenStore
from ivr.api import console
from ivr.api.guard import dumps
from ivr.api.openapi import Call
from ivr.config import Config
from ivr.pbx.ami import AmiLink
from ivr.staff.roster import Person, RosterStore
from ivr.voice.tts import Speaker


class AmiStatus:
    """The AMI link this service reports on: the worker's it was given, one of its own, or
    none."""

    def __init__(self, link: AmiLink | None) -> None:
        self.link = link

    @property
    def state(self) -> str:
        if self.link is None:
            return "unconfigured"
        return "up" if self.link.is_up else "down"


@dataclass
class RosterCache:
    """The roster last read, by version: version ids are unique, so it is never stale."""

    version: str | None = None
    people: list[Person] = field(default_factory=list)
    #: One import at a time (the CSV parser sets a process-wide csv limit while it runs).
    importing: asyncio.Lock = field(default_factory=asyncio.Lock)


config_key = web.AppKey("config", Config)
redis_key = web.AppKey("redis", Redis)
tokens_key = web.AppKey("tokens", TokenStore)
tickets_key = web.AppKey("tickets", StreamTickets)
ami_key = web.AppKey("ami", AmiStatus)
#: The speech renderer shared with a worker in the same process (its cache size is a metric).
speaker_key: web.AppKey[Speaker | None] = web.AppKey("speaker")
#: The service's own renderer when no worker shares one (made on first use, closed at exit).
own_speaker_key: web.AppKey[list[Speaker]] = web.AppKey("own_speaker")
roster_key = web.AppKey("roster", RosterCache)
openapi_key: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
#: Set when the service shuts down: live streams end instead of holding the shutdown.
closing_key = web.AppKey("closing", asyncio.Event)
streams_key = web.AppKey("streams", console.LiveStreams)


async def audit_write(
    request: web.Request, call: Call, action: str, target: str, **details: Any
) -> None:
    who = call.who
    assert who is not None, "writes are never open to all"
    await audit.record(
        request.app[redis_key],
        who.name,
        action,
        role=who.role.value,
        target=target,
        details=details,
    )


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(value, status=status, headers=headers, dumps=dumps)


def page(items: list[Any], call: Call, **extra: Any) -> web.Response:
    offset, limit = call.query["offset"], call.query["limit"]
    return json_response(
        {**extra, "total": len(items), "offset": offset, "limit": limit,
         "items": items[offset : offset + limit]}
    )  # fmt: skip


async def load_roster(app: web.Application) -> tuple[str | None, list[Person]]:
    cache, store = app[roster_key], RosterStore(app[redis_key])
    version = await store.version()
    if version is not None and version == cache.version:
        return version, cache.people
    people = await store.load()
    # Cache only what was read under one version (an import may land during the read).
    if version is not None and await store.version() == version:
        cache.version, cache.people = version, people
    return version, people


def speaker_for(app: web.Application) -> Speaker:
    """The speech renderer: the worker's when one shares this process, else the service's own
    (its espeak-ng process starts on the first render, and stops with the service)."""
    shared = app[speaker_key]
    if shared is not None:
        return shared
    own = app[own_speaker_key]
    if not own:
        config = app[config_key]
        own.append(Speaker(config.audio_dir, rate=config.tts_rate))
    return own[0]
