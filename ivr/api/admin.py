"""The API's admin handlers for the console's "Roster and access" screen: a roster checked
before it replaces the one in force, who has a PIN (never the PIN), API tokens created (shown
once) and revoked, and the audit log read with filters.

Handlers only translate HTTP into calls on `ivr.staff`, `ivr.access`; the route table that
serves them is `ivr.api.app.ROUTES`.
"""

from __future__ import annotations

from aiohttp import web

from ivr.access import audit
from ivr.access.pins import PinStore
from ivr.access.tokens import Role
from ivr.api.openapi import Call
from ivr.api.roster import parse_upload, per_role_and_unit
from ivr.api.state import (
    audit_write,
    json_response,
    load_roster,
    redis_key,
    roster_key,
    tokens_key,
)


async def check_roster(request: web.Request, call: Call) -> web.StreamResponse:
    """What importing this CSV would do, without doing it: the same parse, all or nothing."""
    app = request.app
    async with app[roster_key].importing:
        people = await parse_upload(app, call.body)
    version, current = await load_roster(app)
    old, new = {p.id for p in current}, {p.id for p in people}
    return json_response(
        {
            "count": len(people),
            **per_role_and_unit(people),
            "added": len(new - old),
            "removed": len(old - new),
            "current": {"version": version, "count": len(current)},
        }
    )


async def pin_holders(request: web.Request, call: Call) -> web.StreamResponse:
    """Who has a PIN for the phone lines, with their roster entry; never a PIN or its digest."""
    holders = await PinStore(request.app[redis_key]).holders()
    _, people = await load_roster(request.app)
    by_id = {p.id: p for p in people}
    items = []
    for pid in holders:
        person = by_id.get(pid)
        items.append(
            {
                "id": pid,
                "name": person.name if person else None,
                "role": person.role if person else None,
                "unit": person.unit if person else None,
                "in_roster": person is not None,
            }
        )
    return json_response({"items": items, "roster": len(people)})


async def list_tokens(request: web.Request, call: Call) -> web.StreamResponse:
    tokens = await request.app[tokens_key].list()
    return json_response({"items": [t.as_dict() for t in tokens]})


async def create_token(request: web.Request, call: Call) -> web.StreamResponse:
    name, role = call.body["name"], Role(call.body["role"])
    token = await request.app[tokens_key].create(name, role)
    await audit_write(request, call, "token.create", name, role=role.value)
    # The only time the token is ever shown: it is stored as a digest.
    return json_response({"name": name, "role": role.value, "token": token}, status=201)


async def revoke_token(request: web.Request, call: Call) -> web.StreamResponse:
    name = request.match_info["name"]
    await request.app[tokens_key].revoke(name)
    await audit_write(request, call, "token.revoke", name)
    return json_response({"name": name, "revoked": True})


async def audit_log(request: web.Request, call: Call) -> web.StreamResponse:
    q = call.query
    items, cursor = await audit.search(
        request.app[redis_key], before=q["before"], limit=q["limit"],
        action=q["action"], who=q["who"], target=q["target"],
    )  # fmt: skip
    return json_response({"items": items, "next": cursor})
