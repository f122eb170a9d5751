"""Security headers on every answer of the API and the console, errors included.

The attack: the console framed in another page (clickjacking), a CSV or JSON answer sniffed as
HTML, the roster (phone numbers) and the reports kept in a browser's or a proxy's cache.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from ivr.api.app import ROUTES
from ivr.config import Config
from tests.api.test_http import concrete, start_api

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
async def test_every_route_answers_with_the_security_headers(db: Redis, route: object) -> None:
    api = await start_api(db, Config())
    try:
        await api.roster()
        cid = await api.start()
        path = concrete(route.path, cid)  # type: ignore[attr-defined]
        method = route.method  # type: ignore[attr-defined]
        # Whatever the answer (2xx, a refused body, a stream): the headers are on it.
        for role in ("admin", None):
            response = await api.call(method, path, role, json={})
            for name, value in EXPECTED.items():
                assert response.headers.get(name) == value, (method, path, role, name)
            csp = response.headers.get("Content-Security-Policy", "")
            assert "frame-ancestors 'none'" in csp, (method, path, csp)
            response.close()
    finally:
        await api.client.close()
