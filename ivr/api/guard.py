"""What stands between a request and an API handler: the token check, the query and body
checks against the route's schemas, and errors turned into JSON.

`HTTP_STATUS` is the one place that gives each error class its HTTP status; `error_middleware`
applies it, so handlers raise the service's own errors and never build an error response.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from ivr.access.tickets import StreamTickets
from ivr.access.tokens import Role, TokenError, TokenInfo, TokenNotFound, TokenStore, digest
from ivr.api.openapi import Call, Param, Route
from ivr.api.validate import Checker
from ivr.campaign.scenarios import ScenarioNotFound
from ivr.campaign.spec import CampaignError
from ivr.campaign.store import CampaignConflict, CampaignNotFound
from ivr.errors import (
    AmiError,
    ConfigError,
    InvalidNumberError,
    IvrError,
    SandboxError,
    TtsError,
)
from ivr.staff.roster import RosterError

log = logging.getLogger(__name__)

#: Largest JSON body: a campaign with long messages in two languages is a few kilobytes.
MAX_JSON_BYTES = 64 * 1024


class ApiError(IvrError):
    """A request the API refuses before it reaches the service (auth, input)."""


class Unauthorized(ApiError):
    """No token, or an unknown or revoked one; `error_id` says which."""

    error_id = "unauthorized"

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.error_id = code


class Forbidden(ApiError):
    error_id = "forbidden"


class InvalidInput(ApiError):
    """Bad query or body; `problems` lists (field, reason)."""

    error_id = "invalid_input"

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class InvalidJson(InvalidInput):
    error_id = "invalid_json"


class PayloadTooLarge(ApiError):
    error_id = "payload_too_large"


#: HTTP status per error class; an error gets the entry of its nearest listed class.
HTTP_STATUS: dict[type[IvrError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    CampaignNotFound: 404,
    ScenarioNotFound: 404,
    TokenNotFound: 404,
    CampaignConflict: 409,
    PayloadTooLarge: 413,
    InvalidInput: 422,
    RosterError: 422,
    CampaignError: 422,
    InvalidNumberError: 422,
    TokenError: 422,
    AmiError: 503,
    TtsError: 503,
    ConfigError: 500,
    SandboxError: 500,
    IvrError: 500,
}
#: Stable codes for the errors aiohttp raises itself (unknown path, wrong method...).
_AIOHTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def status_for(exc: IvrError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"error": code, "message": message, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def dumps(value: Any) -> str:
    """JSON for answers: UTF-8 text, unless an error echoes a lone surrogate from the request,
    which UTF-8 cannot carry: then escaped."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, default=str)
    return text


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(
            exc.status, _AIOHTTP_CODES.get(exc.status, "http_error"), exc.reason
        )
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except IvrError as exc:
        extra: dict[str, Any] = {}
        if isinstance(exc, RosterError) and exc.problems:
            extra["problems"] = [{"line": line, "reason": why} for line, why in exc.problems]
        if isinstance(exc, InvalidInput) and exc.problems:
            extra["problems"] = [{"field": name, "reason": why} for name, why in exc.problems]
        if exc.details:
            extra["details"] = exc.details
        return error_response(status_for(exc), exc.error_id, exc.message, **extra)
    except RedisError as exc:
        log.warning("%s %s: Redis: %s", request.method, request.path, exc)
        return error_response(503, "redis_unavailable", f"Redis is unavailable: {exc}")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal_error", "internal error (logged on the server)")


# -- the guard ----------------------------------------------------------------------------


def guarded(
    route: Route, tokens: TokenStore, tickets: StreamTickets
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of `route`: checks the token, the query and the body, then calls it."""
    # Compiled once per route, not per request.
    params = [(param, Checker(param.schema)) for param in route.query]
    body_checker = None if route.body is None else Checker(route.body)

    async def handle(request: web.Request) -> web.StreamResponse:
        who = None
        if route.role is not None:
            if route.ticket_in_query and not request.headers.get("Authorization"):
                who = await _redeem(request, tokens, tickets, route.role)
            else:
                who = await _authenticate(request, tokens, route.role)
        query = _query(request, params)
        body: Any = None
        if body_checker is not None:
            body = await _json_body(request, body_checker)
        elif route.raw_body is not None:
            body = await request.read()
        return await route.handler(request, Call(who, query, body))

    return handle


def bearer_token(request: web.Request) -> str:
    """The token of the request's `Authorization: Bearer` header ('' without one)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def bearer_digest(request: web.Request) -> str:
    """The digest of the request's bearer token (a route's guard has checked it)."""
    return digest(bearer_token(request))


async def _authenticate(request: web.Request, tokens: TokenStore, needed: Role) -> TokenInfo:
    if not request.headers.get("Authorization"):
        raise Unauthorized("a token is needed: Authorization: Bearer <token>", "missing_token")
    token = bearer_token(request)
    if not token:
        raise Unauthorized("expected Authorization: Bearer <token>", "invalid_token")
    return _allowed(await tokens.lookup(token), needed)


async def _redeem(
    request: web.Request, tokens: TokenStore, tickets: StreamTickets, needed: Role
) -> TokenInfo:
    """The token behind the request's `?ticket=`, used up here (`ivr.access.tickets`)."""
    if "token" in request.query:
        # Refused outright, not ignored: a client that still sends its token in the URL
        # must learn it, and change, before that URL reaches another log.
        raise Unauthorized(
            "a token is never accepted in a URL: POST .../stream-ticket with the token in the "
            "Authorization header, then open the stream with ?ticket=",
            "token_in_url",
        )
    raw = request.query.get("ticket", "")
    if not raw:
        raise Unauthorized(
            "a token (Authorization: Bearer <token>) or a stream ticket (?ticket=) is needed",
            "missing_token",
        )
    ticket = await tickets.redeem(raw)
    if ticket is None:
        raise Unauthorized("unknown, expired or already used ticket", "invalid_ticket")
    if ticket.campaign != request.match_info.get("id"):
        raise Unauthorized("this ticket is for another campaign", "invalid_ticket")
    return _allowed(await tokens.lookup_digest(ticket.token_digest), needed)


def _allowed(info: TokenInfo | None, needed: Role) -> TokenInfo:
    if info is None:
        raise Unauthorized("unknown token", "invalid_token")
    if info.revoked_at is not None:
        # Not named: whoever holds a revoked token learns nothing more from it.
        raise Unauthorized("this token was revoked", "revoked_token")
    if not info.role.allows(needed):
        raise Forbidden(
            f"this needs the {needed.value} role; token {info.name!r} is {info.role.value}"
        )
    return info


_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _query(request: web.Request, params: list[tuple[Param, Checker]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for param, checker in params:
        raw = request.query.get(param.name)
        if raw is None:
            values[param.name] = param.schema.get("default")
            continue
        value: Any = raw
        if param.schema.get("type") == "integer":
            if not _INTEGER.fullmatch(raw):
                problems.append((param.name, f"expected a whole number, got {raw[:20]!r}"))
                continue
            value = int(raw)
        problems += checker.problems(value, param.name)
        values[param.name] = value
    if problems:
        raise InvalidInput(f"{problems[0][0]}: {problems[0][1]}", problems)
    return values


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> int | float:
    # JSON Schema counts 30.0 as an integer: the handlers get the int they expect.
    value = float(text)
    return int(value) if value.is_integer() else value


async def _json_body(request: web.Request, checker: Checker) -> Any:
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"body too large ({MAX_JSON_BYTES} bytes at most)")
    raw = await request.read()
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"body too large ({MAX_JSON_BYTES} bytes at most)")
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_number)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"the body is not JSON: {exc}"[:200]) from None
    problems = checker.problems(value)
    if problems:
        raise InvalidInput(f"{problems[0][0]}: {problems[0][1]}", problems)
    return value
