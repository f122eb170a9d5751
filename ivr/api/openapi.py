"""The API's route table type, and the OpenAPI 3.1 document built from that table.

`ivr.api.app` declares every route once, as a `Route`: the same object adds it to aiohttp, guards
it with its role, checks its query and body, and describes it here. A test checks that the
routes aiohttp serves and the paths documented are the same set.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.access.tokens import Role, TokenInfo
from ivr.api import schemas
from ivr.api.schemas import Schema


@dataclass(frozen=True)
class Call:
    """What a handler gets besides the request, checked against its route first."""

    #: The caller's token; None on routes open to all.
    who: TokenInfo | None
    #: Query parameters, parsed and checked (absent ones: their schema's default or None).
    query: dict[str, Any]
    #: The JSON body checked against the route's schema, the raw bytes of a raw body, or None.
    body: Any


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]

_ERROR_TEXT = {
    401: "No token, or an unknown or revoked one (`Authorization: Bearer <token>`); on the "
    "stream, a ticket unknown, expired or used already, or a token in the URL.",
    403: "The token's role may not do this.",
    404: "No such campaign, scenario or token.",
    409: "The campaign is not running.",
    413: "The body is too large.",
    422: "Bad input: malformed JSON, wrong types or values, a bad roster (with its lines).",
    503: "Redis (or, where it matters, Asterisk) is unreachable.",
}


@dataclass(frozen=True)
class Param:
    """A query parameter: its value is parsed and checked against `schema`."""

    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One API route: what aiohttp serves and what OpenAPI says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    #: Least role allowed; None: no token needed.
    role: Role | None
    query: tuple[Param, ...] = ()
    #: JSON Schema of a JSON body, checked before the handler runs.
    body: Schema | None = None
    #: Media type of a body that is not JSON (the roster's CSV), passed to the handler as is.
    raw_body: str | None = None
    response: Schema | None = None
    #: Media type of the answer.
    produces: str = "application/json"
    #: Other media types a client may ask for with `Accept`.
    also_produces: tuple[str, ...] = ()
    status: int = 200
    #: Error statuses beyond those the role, path and body imply.
    errors: tuple[int, ...] = ()
    #: Also accept a stream ticket as `?ticket=` (`ivr.access.tickets`): only for routes a
    #: browser's EventSource opens, which cannot set headers. A token is never taken from a URL.
    ticket_in_query: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    def error_statuses(self) -> list[int]:
        found = set(self.errors)
        if self.role is not None:
            found |= {401, 403, 503}
        if "{" in self.path:
            found.add(404)
        if self.body is not None or self.raw_body is not None or self.query:
            found.add(422)
        if self.body is not None or self.raw_body is not None:
            found.add(413)
        return sorted(found)


def document(routes: list[Route], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ivr crisis call-out console API",
            "version": version,
            "description": (
                "Rosters, campaigns, live status and the audit log of the ivr call-out server. "
                "Every route but health, metrics and this document needs a token: "
                "`Authorization: Bearer <token>` (created on the server with `ivr token "
                "create NAME --role viewer|operator|admin`). Errors are JSON: "
                '`{"error": "<stable code>", "message": "..."}`.'
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "stream_ticket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "A single-use ticket of 30 s for one campaign's stream, "
                    "from `POST /api/campaigns/{id}/stream-ticket` (never the token itself).",
                },
            },
            "schemas": {"Error": schemas.ERROR},
        },
    }


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.role is not None:
        op["security"] = [{"token": []}]
        if route.ticket_in_query:
            op["security"].append({"stream_ticket": []})
        op["description"] = f"Role: {route.role.value} or above."
    else:
        op["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in route.query
    ]
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    elif route.raw_body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {route.raw_body: {"schema": {"type": "string"}}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if route.produces == "application/json":
        ok["content"] = {"application/json": {"schema": route.response or {"type": "object"}}}
    else:
        media_types = (route.produces, *route.also_produces)
        ok["content"] = {media: {"schema": {"type": "string"}} for media in media_types}
    responses: dict[str, Any] = {str(route.status): ok}
    for status in route.error_statuses():
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op["responses"] = responses
    return op
