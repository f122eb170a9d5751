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

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from redis.asyncio import Redis

from ivr import __version__, limits, logs
from ivr.access.tickets import StreamTickets
from ivr.access.tokens import Role, TokenStore
from ivr.api import admin, cluster, console, console_schemas, metrics, openapi, roster, schemas
from ivr.api import campaigns as camp
from ivr.api.guard import error_middleware, guarded
from ivr.api.openapi import Call, Handler, Param, Route
from ivr.api.state import (
    AmiStatus,
    RosterCache,
    ami_key,
    closing_key,
    config_key,
    json_response,
    openapi_key,
    own_speaker_key,
    redis_key,
    roster_key,
    speaker_key,
    streams_key,
    tickets_key,
    tokens_key,
)
from ivr.campaign import live
from ivr.config import Config
from ivr.errors import AmiError, ConfigError
from ivr.health import checks
from ivr.health.state import State
from ivr.pbx.ami import AmiLink
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
    app[tickets_key] = tickets = StreamTickets(redis)
    app[speaker_key] = speaker
    app[own_speaker_key] = []
    app[ami_key] = AmiStatus(link)
    app[roster_key] = RosterCache()
    app[openapi_key] = openapi.document(ROUTES, version=__version__)
    app[closing_key] = asyncio.Event()
    app[streams_key] = console.LiveStreams()
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_closing)
    app.cleanup_ctx.append(_ami_link)
    app.on_cleanup.append(_close_own_speaker)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route, tokens, tickets))
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


async def _close_own_speaker(app: web.Application) -> None:
    for speaker in app[own_speaker_key]:
        await speaker.close()


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


async def _console_page(request: web.Request, call: Call) -> web.StreamResponse:
    return console.console_page(request.app[config_key].language)


async def _whoami(request: web.Request, call: Call) -> web.StreamResponse:
    assert call.who is not None
    return json_response({"name": call.who.name, "role": call.who.role.value})


async def _openapi(request: web.Request, call: Call) -> web.StreamResponse:
    return json_response(request.app[openapi_key])


async def _metrics(request: web.Request, call: Call) -> web.StreamResponse:
    numbers = await metrics.scrape(
        request.app[redis_key],
        ami_state=request.app[ami_key].state,
        speaker=request.app[speaker_key],
    )
    return await metrics.respond(request, numbers)


# -- the route table ----------------------------------------------------------------------

_OFFSET = Param("offset", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0})
_LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
_STREAM_ID = {"type": "string", "pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}
_PAGE = (_OFFSET, _LIMIT)
_C = "/api/campaigns/{id}"
_S = "/api/scenarios/{key}"
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
_AUDIT_FILTERS = (
    Param(
        "action",
        {"type": "string", "pattern": "^[a-z_.]{1,40}$"},
        "entries whose action starts with this (`campaign.` or `campaign.start`)",
    ),
    Param("who", _TEXT, "entries by this token name (or `cli:USER`, `phone:ID`)"),
    Param("target", _TEXT, "entries on this campaign id, token name..."),
)

ROUTES: list[Route] = [
    Route("GET", "/api/whoami", _whoami, "The token's name and role (what the console shows)",
          Role.viewer, response=console_schemas.WHOAMI),
    Route("GET", "/api/health", _health, "Service, Redis and AMI link state", None,
          response=schemas.HEALTH),
    Route("GET", "/api/cluster", cluster.cluster_view,
          "The installation at a glance (`ivr status`): sites and their workers, Redis's "
          "primary and replicas with their lag, each Sentinel's view, and the health checks",
          Role.viewer, response=console_schemas.CLUSTER),
    Route("GET", "/api/openapi.json", _openapi, "This document", None),
    Route("GET", "/metrics", _metrics,
          "Prometheus metrics (OpenMetrics on `Accept: application/openmetrics-text`)", None,
          produces=metrics.CONTENT_TYPE, also_produces=(metrics.CONTENT_TYPE_OPENMETRICS,)),
    Route("GET", "/api/roster", roster.list_roster, "The roster in force, a page at a time",
          Role.viewer, query=_PAGE, response=schemas.ROSTER_PAGE),
    Route("POST", "/api/roster", roster.import_roster,
          "Replace the roster with a CSV export (all or nothing; problems listed by line)",
          Role.admin, raw_body="text/csv", response=schemas.ROSTER_IMPORTED),
    Route("GET", "/api/roster/summary", roster.roster_summary,
          "The roster in force in numbers: people per role and per unit (what a campaign can "
          "target)", Role.viewer, response=console_schemas.ROSTER_SUMMARY),
    Route("POST", "/api/roster/check", admin.check_roster,
          "Check a roster CSV as an import would, changing nothing: the count per role and "
          "unit, or every bad row with its line", Role.admin, raw_body="text/csv",
          response=console_schemas.ROSTER_CHECKED),
    Route("GET", "/api/roster.csv", roster.export_roster, "The roster as CSV", Role.viewer,
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
    Route("GET", _S, camp.preview_scenario,
          "Who a scenario would call (per role and unit, against its quotas), the time to "
          "meet them, its message and groups; starts nothing", Role.viewer,
          response=console_schemas.SCENARIO_PREVIEW),
    Route("GET", f"{_S}/audio", camp.scenario_audio,
          "The scenario's message rendered by the text-to-speech, as staff will hear it",
          Role.viewer, query=(Param("language", {"enum": ["fr", "en"]},
                                    "default: the installation's IVR_LANGUAGE"),),
          produces="audio/wav"),
    Route("POST", "/api/scenarios/{key}/start", camp.start_scenario,
          "Start a prepared scenario, as a drill or not", Role.operator,
          body=schemas.SCENARIO_START, response=schemas.REPORT, status=201),
    Route("GET", f"{_C}/extensions", camp.extension_options,
          "What the campaign can be extended to: its groups left (people each would add), "
          "and the roster's roles and units", Role.viewer, response=console_schemas.EXTENSIONS),
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
    Route("POST", f"{_C}/stream-ticket", camp.stream_ticket,
          "A ticket to open this campaign's live stream from a browser: single use, valid "
          "30 s (an EventSource cannot send the token in a header; a token never goes in a "
          "URL)", Role.viewer, response=console_schemas.STREAM_TICKET),
    Route("GET", f"{_C}/stream", _campaign_stream,
          "Live server-sent events: `snapshot`, then `update` on every change, `ami` when "
          "the PBX link changes. The token in the header, or `?ticket=` from "
          "`stream-ticket`", Role.viewer, produces="text/event-stream",
          ticket_in_query=True),
    Route("GET", "/", _console_page, "The console (a web page, in IVR_LANGUAGE by default)",
          None, produces="text/html"),
    Route("GET", "/console-catalogue.json", _static(console.CATALOGUE),
          "The console's words, in French and English", None),
    Route("GET", "/console.js", _static("console.js"), "The console's script", None,
          produces="text/javascript"),
    Route("GET", "/console.css", _static("console.css"), "The console's style", None,
          produces="text/css"),
    Route("GET", "/api/audit", admin.audit_log,
          "The audit log, newest first, filtered by action, who and target (a filtered page "
          "reads at most 20,000 entries: fewer items and a `next` when it matches little)",
          Role.admin,
          query=(Param("before", _STREAM_ID, "the `next` of the previous page"), _LIMIT,
                 *_AUDIT_FILTERS),
          response=schemas.stream_of(schemas.AUDIT_ENTRY)),
    Route("GET", "/api/pins", admin.pin_holders,
          "Who has a PIN for the phone lines (never the PIN)", Role.admin,
          response=console_schemas.PIN_HOLDERS),
    Route("GET", "/api/tokens", admin.list_tokens, "The live API tokens (never a secret)",
          Role.admin, response=console_schemas.TOKENS),
    Route("POST", "/api/tokens", admin.create_token,
          "Create a token: the answer is the only time it is shown", Role.admin,
          body=schemas.TOKEN_NEW, response=console_schemas.TOKEN_CREATED, status=201),
    Route("DELETE", "/api/tokens/{name}", admin.revoke_token, "Revoke a token at once",
          Role.admin, response=console_schemas.TOKEN_REVOKED),
]  # fmt: skip


# -- serving ------------------------------------------------------------------------------


class AccessLog(AbstractAccessLogger):
    """One record per request, its path without the query string: the live stream takes a
    ticket in the query (an EventSource cannot set headers); even a used-up ticket, and a token
    a client wrongly put in a URL, stay out of logs."""

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
