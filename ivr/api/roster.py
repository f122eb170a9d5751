"""The API's roster handlers: the roster in force a page at a time, as CSV, summed up per role
and unit, and replaced by an uploaded CSV (all or nothing). Served by `ivr.api.app.ROUTES`."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ivr.api.openapi import Call
from ivr.api.state import (
    audit_write,
    config_key,
    json_response,
    load_roster,
    page,
    redis_key,
    roster_key,
)
from ivr.staff.csvfile import export_csv, parse_roster
from ivr.staff.roster import Person, RosterStore


def person_dict(p: Person) -> dict[str, Any]:
    return {
        "id": p.id, "name": p.name, "role": p.role, "unit": p.unit, "phones": list(p.phones),
        "language": p.language, "on_call": p.on_call, "backup": p.backup, "tags": sorted(p.tags),
    }  # fmt: skip


async def list_roster(request: web.Request, call: Call) -> web.StreamResponse:
    version, people = await load_roster(request.app)
    return page([person_dict(p) for p in people], call, version=version)


def per_role_and_unit(people: Sequence[Person]) -> dict[str, dict[str, int]]:
    """How many people per role and per unit, sorted by name."""
    return {
        "roles": dict(sorted(Counter(p.role for p in people).items())),
        "units": dict(sorted(Counter(p.unit for p in people).items())),
    }


async def parse_upload(app: web.Application, body: bytes) -> list[Person]:
    """An uploaded roster CSV parsed, all or nothing (the caller holds the import lock).
    100,000 rows parse in about 2 s: off the event loop, so health and metrics answer."""
    return await asyncio.to_thread(parse_roster, body, default_language=app[config_key].language)


async def import_roster(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    async with app[roster_key].importing:
        people = await parse_upload(app, call.body)
        version = await RosterStore(app[redis_key]).replace(people)
    await audit_write(
        request, call, "roster.import", version, count=len(people), bytes=len(call.body)
    )
    return json_response({"version": version, "count": len(people)})


async def roster_summary(request: web.Request, call: Call) -> web.StreamResponse:
    version, people = await load_roster(request.app)
    return json_response(
        {
            "version": version,
            "total": len(people),
            **per_role_and_unit(people),
        }
    )


async def export_roster(request: web.Request, call: Call) -> web.StreamResponse:
    _, people = await load_roster(request.app)
    return web.Response(
        text=export_csv(people),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="roster.csv"'},
    )
