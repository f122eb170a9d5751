"""The console's "Platform" screen: the installation at a glance, as `ivr status` shows it — the
sites (one per Asterisk) and their workers, Redis's primary and replicas with their lag, what
each Sentinel says — with the overall state and the checks behind it, as `/api/health` gives
them. Read-only; the route table that serves it is `ivr.api.app.ROUTES`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ivr.api.openapi import Call
from ivr.api.state import ami_key, config_key, json_response, redis_key
from ivr.db import describe
from ivr.health import checks
from ivr.health.status import cluster_status


async def cluster_view(request: web.Request, call: Call) -> web.StreamResponse:
    """Sites, workers, Redis replication, the Sentinels' view, and the health checks."""
    app = request.app
    redis = app[redis_key]
    status, report = await asyncio.gather(
        cluster_status(redis), checks.service_report(redis, app[ami_key].state)
    )
    return json_response(
        {
            "status": report.state.name.lower(),
            "checks": [
                {"name": c.name, "state": c.state.name.lower(), "summary": c.summary}
                for c in report.checks
            ],
            "where": describe(app[config_key]),
            **status,
        }
    )
