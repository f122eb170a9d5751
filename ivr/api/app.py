"""The console's HTTP API (aiohttp), served by `ivr serve`.

`make_app()` builds the application; `ROUTES` is the one route table: each entry is served by
aiohttp, guarded by its role, has its query and body checked, and is described in the OpenAPI
document (`/api/openapi.json`). Handlers only translate HTTP into calls on the campaign, roster,
token and audit modules (the campaign handlers are in `ivr.api.campaigns`, what they
share in `ivr.api.state`). Errors are JSON `{"error": <stable code>, "message": ...}`; which
status each error class gets is decided in one place, `ivr.api.guard.HTTP_STATUS`.

The service comes up without Asterisk: the AMI link is tried in the background, and health and
metrics report it as down (or unconfigured) meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from redis.asyncio import Redis

from ivr import __version__, limits, logs
from ivr.access import audit
from ivr.access.tokens import Role, TokenStore
from ivr.api import campaigns as camp
from ivr.api import console, metrics, openapi, schemas
from ivr.api.guard import error_middleware, guarded
from ivr.api.openapi import Call, Handler, Param, Route
from ivr.api.state import (
    AmiStatus,
    RosterCache,
    ami_key,
    audit_write,
    closing_key,
    config_key,
    json_response,
    load_roster,
    openapi_key,
    page,
    redis_key,
    roster_key,
    speaker_key,
    streams_key,
    tokens_key,
)
from ivr.campaign import live
from ivr.config import Config
from ivr.errors import AmiError, ConfigError
from ivr.health import checks
from ivr.health.state import State
from ivr.pbx.ami import AmiLink
from ivr.staff.csvfile import export_csv, parse_roster
from ivr.staff.roster import Person, RosterStore
from ivr.voice.tts import Speaker

log = logging.getLogger(__name__)

#: Largest roster upload: 100,000 staff export to about 10 MB.
MAX_ROSTER_BYTES = limits.ROSTER_BYTES


def make_app(
    config: Config,
    redis: Redis,
    *,
    link: AmiLink | None = None,
    speaker: Speaker | None = None,
) -> web.Application:
    """The API application. `redis`, `link` and `speaker` stay the caller's to close.

    Without a `link` (a worker's, when both run in one process), an AMI link of the service's
    own is tried in the background if AMI credentials are configured (only to report its
    state); without credentials, the link is "unconfigured".
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_ROSTER_BYTES)
    app[config_key] = config
    app[redis_key] = redis
    app[tokens_key] = tokens = TokenStore(redis)
    app[speaker_key] = speaker
    app[ami_key] = AmiStatus(link)
    app[roster_key] = RosterCache()
    app[openapi_key] = openapi.document(ROUTES, version=__version__)
    app[closing_key] = asyncio.Event()
    app[streams_key] = console.LiveStreams()
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_closing)
    app.cleanup_ctx.append(_ami_link)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route, tokens))
    return app


#: On every answer: no content sniffing, no framing (clickjacking), no referrer, and nothing
#: kept by a browser or a proxy (the roster holds phone numbers, reports hold who answered).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: What answers without a policy of their own (JSON, CSV) get: nothing may load or frame them.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The one place every response, errors included, gets its security headers."""
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)


async def _closing(app: web.Application) -> None:
    app[closing_key].set()


async def _ami_link(app: web.Application) -> AsyncIterator[None]:
    config, status = app[config_key], app[ami_key]
    if status.link is not None or not (config.ami_user and config.ami_secret):
        yield
        return
    link = AmiLink.for_config(config)
    status.link = link
    task = asyncio.create_task(_connect_until_up(link), name="http-ami-link")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await link.close()


async def _connect_until_up(link: AmiLink, delay: float = 1.0, longest: float = 30.0) -> None:
    """Log in once, retrying with backoff; after that the link reconnects by itself."""
    while True:
        try:
            await link.start()
            return
        except AmiError as exc:
            log.warning("%s; retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)


# -- handlers -----------------------------------------------------------------------------


async def _health(request: web.Request, call: Call) -> web.StreamResponse:
    """The checks a running console can make (`ivr.health.checks.service_report`); always 200,
    the state is in the body (`ivr health --console` reads it)."""
    report = await checks.service_report(request.app[redis_key], request.app[ami_key].state)
    redis = next(c for c in report.checks if c.name == "redis")
    return json_response(
        {
            "status": report.state.name.lower(),
            "redis": "down" if redis.state is State.CRITICAL else "up",
            "ami": request.app[ami_key].state,
            "version": __version__,
            "checks": [c.as_dict() for c in report.checks],
        }
    )


def _person(p: Person) -> dict[str, Any]:
    return {
        "id": p.id, "name": p.name, "role": p.role, "unit": p.unit, "phones": list(p.phones),
        "language": p.language, "on_call": p.on_call, "backup": p.backup, "tags": sorted(p.tags),
    }  # fmt: skip


async def _list_roster(request: web.Request, call: Call) -> web.StreamResponse:
    version, people = await load_roster(request.app)
    return page([_person(p) for p in people], call, version=version)


async def _import_roster(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    async with app[roster_key].importing:
        # 100,000 rows parse in about 2 s: off the event loop, so health and metrics answer.
        people = await asyncio.to_thread(
            parse_roster, call.body, default_language=app[config_key].language
        )
        version = await RosterStore(app[redis_key]).replace(people)
    await audit_write(
        request, call, "roster.import", version, count=len(people), bytes=len(call.body)
    )
    return json_response({"version": version, "count": len(people)})


async def _export_roster(request: web.Request, call: Call) -> web.StreamResponse:
    _, people = await load_roster(request.app)
    return web.Response(
        text=export_csv(people),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="roster.csv"'},
    )


async def _campaign_stream(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    feed = live.CampaignFeed(app[redis_key], request.match_info["id"])
    first = await feed.snapshot()  # before the answer starts: an unknown campaign is a 404
    return await console.stream(
        request, feed, first, lambda: app[ami_key].state, app[closing_key], app[streams_key]
    )


def _static(name: str) -> Handler:
    async def handler(request: web.Request, call: Call) -> web.StreamResponse:
        return console.static_file(name)

    handler.__name__ = "_console_" + name.replace(".", "_")
    return handler


async def _openapi(request: web.Request, call: Call) -> web.StreamResponse:
    return json_response(request.app[openapi_key])


async def _metrics(request: web.Request, call: Call) -> web.StreamResponse:
    numbers = await metrics.scrape(
        request.app[redis_key],
        ami_state=request.app[ami_key].state,
        speaker=request.app[speaker_key],
    )
    return await metrics.respond(request, numbers)


async def _audit_log(request: web.Request, call: Call) -> web.StreamResponse:
    limit = call.query["limit"]
    items = await audit.entries(request.app[redis_key], before=call.query["before"], limit=limit)
    return json_response({"items": items, "next": items[-1]["id"] if len(items) == limit else None})


# -- the route table ----------------------------------------------------------------------

_OFFSET = Param("offset", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0})
_LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
_STREAM_ID = {"type": "string", "pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}
_PAGE = (_OFFSET, _LIMIT)
_C = "/api/campaigns/{id}"

ROUTES: list[Route] = [
    Route("GET", "/api/health", _health, "Service, Redis and AMI link state", None,
          response=schemas.HEALTH),
    Route("GET", "/api/openapi.json", _openapi, "This document", None),
    Route("GET", "/metrics", _metrics,
          "Prometheus metrics (OpenMetrics on `Accept: application/openmetrics-text`)", None,
          produces=metrics.CONTENT_TYPE, also_produces=(metrics.CONTENT_TYPE_OPENMETRICS,)),
    Route("GET", "/api/roster", _list_roster, "The roster in force, a page at a time",
          Role.viewer, query=_PAGE, response=schemas.ROSTER_PAGE),
    Route("POST", "/api/roster", _import_roster,
          "Replace the roster with a CSV export (all or nothing; problems listed by line)",
          Role.admin, raw_body="text/csv", response=schemas.ROSTER_IMPORTED),
    Route("GET", "/api/roster.csv", _export_roster, "The roster as CSV", Role.viewer,
          produces="text/csv"),
    Route("GET", "/api/campaigns", camp.list_campaigns, "Campaigns, newest first", Role.viewer,
          query=_PAGE, response=schemas.page_of(schemas.CAMPAIGN_SUMMARY)),
    Route("POST", "/api/campaigns", camp.start_campaign, "Start a campaign", Role.operator,
          body=schemas.CAMPAIGN, response=schemas.REPORT, status=201),
    Route("POST", "/api/campaigns/estimate", camp.estimate_campaign,
          "How long a campaign would take to meet its quotas (starts nothing)", Role.viewer,
          body=schemas.ESTIMATE, response=schemas.ESTIMATED),
    Route("GET", _C, camp.campaign_report, "A campaign's report", Role.viewer,
          response=schemas.REPORT),
    Route("POST", f"{_C}/stop", camp.stop_campaign, "Stop calling (calls in progress finish)",
          Role.operator, response=schemas.STOPPED),
    Route("POST", f"{_C}/quota", camp.raise_quota, "Raise a role's quota in a running campaign",
          Role.operator, body=schemas.QUOTA, response=schemas.QUOTA_RAISED, errors=(409,)),
    Route("POST", f"{_C}/extend", camp.extend_campaign,
          "Extend a campaign: to its next group (empty body), or to the roles and units given; "
          "people already in it are skipped; an ended campaign resumes", Role.operator,
          body=schemas.EXTEND, response=schemas.EXTENDED, errors=(409,)),
    Route("GET", "/api/scenarios", camp.list_scenarios,
          "The prepared scenarios (IVR_SCENARIOS), with how many people each would call",
          Role.viewer, response=schemas.SCENARIOS),
    Route("POST", "/api/scenarios/{key}/start", camp.start_scenario,
          "Start a prepared scenario, as a drill or not", Role.operator,
          body=schemas.SCENARIO_START, response=schemas.REPORT, status=201),
    Route("GET", f"{_C}/people", camp.campaign_people, "Each person's state, in calling order",
          Role.viewer, query=_PAGE, response=schemas.page_of(schemas.CAMPAIGN_PERSON)),
    Route("GET", f"{_C}/events", camp.campaign_events, "The campaign's event log, oldest first",
          Role.viewer, query=(Param("after", _STREAM_ID, "the `next` of the previous page"),
                              _LIMIT), response=schemas.stream_of(schemas.EVENT)),
    Route("GET", f"{_C}/report.html", camp.campaign_report_html,
          "The after-action report as a self-contained HTML page (drills compared with the "
          "previous drills)", Role.viewer, produces="text/html"),
    Route("GET", f"{_C}/attempts.csv", camp.campaign_csv,
          "One row per person with every attempt, as CSV", Role.viewer, produces="text/csv"),
    Route("GET", f"{_C}/stream", _campaign_stream,
          "Live server-sent events: `snapshot`, then `update` on every change, `ami` when "
          "the PBX link changes", Role.viewer, produces="text/event-stream",
          token_in_query=True),
    Route("GET", "/", _static("console.html"), "The live console (a web page)", None,
          produces="text/html"),
    Route("GET", "/console.js", _static("console.js"), "The console's script", None,
          produces="text/javascript"),
    Route("GET", "/console.css", _static("console.css"), "The console's style", None,
          produces="text/css"),
    Route("GET", "/api/audit", _audit_log, "The audit log, newest first", Role.admin,
          query=(Param("before", _STREAM_ID, "the `next` of the previous page"), _LIMIT),
          response=schemas.stream_of(schemas.AUDIT_ENTRY)),
]  # fmt: skip


# -- serving ------------------------------------------------------------------------------


class AccessLog(AbstractAccessLogger):
    """One record per request, its path without the query string: the live stream takes its
    token in the query (an EventSource cannot set headers), and a token stays out of logs."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3f s', request.remote, request.method, request.path,
            response.status, time,
        )  # fmt: skip


async def serve(config: Config) -> None:
    """Serve the API on IVR_HTTP_HOST:IVR_HTTP_PORT until SIGINT or SIGTERM."""
    from ivr.db import client_for

    redis = client_for(config)
    runner = web.AppRunner(make_app(config, redis), access_log_class=AccessLog)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.http_host, config.http_port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"IVR_HTTP_HOST/IVR_HTTP_PORT: cannot listen on {config.http_host}:"
                f"{config.http_port}: {exc.strerror or exc}"
            ) from None
        logs.status.info("ivr: serving on http://%s:%s/", config.http_host, config.http_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await redis.aclose()
