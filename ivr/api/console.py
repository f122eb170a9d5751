"""The console's web side: its page and files from the package, and the live stream of a
campaign as server-sent events (what `ivr.campaign.live` reads, written out for a browser's
EventSource).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionResetError, web
from redis.exceptions import RedisError

from ivr.api.guard import dumps
from ivr.campaign.live import CampaignFeed
from ivr.logs import LogFields

log = logging.getLogger(__name__)

#: The console's files, served as they are: no build step, nothing from the internet.
STATIC = Path(__file__).with_name("static")
#: How long a live stream waits for campaign events before looking at the calls in flight.
STREAM_BLOCK_MS = 1000
#: A comment line this often keeps proxies and the browser from closing a quiet stream.
HEARTBEAT_SECONDS = 15.0
#: The report is a document, not an application: no script, nothing loaded from anywhere.
REPORT_CSP = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'"
}
# The report opened from the console is a blob of it and inherits this policy: hence its
# inline style is allowed.
CONSOLE_CSP = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; frame-ancestors 'none'"
}
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}
#: The console's words, French and English: every string the page shows comes from here.
CATALOGUE = "catalogue.json"
#: Replaced in the page with the installation's language (IVR_LANGUAGE), its default.
_LANGUAGE_MARK = "__IVR_LANGUAGE__"
_GONE = (ConnectionResetError, ClientConnectionResetError)


def static_file(name: str) -> web.Response:
    """One of the console's files (`console.html`, `console.js`, `console.css`)."""
    path = STATIC / name
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8",
        headers=CONSOLE_CSP,
    )


def console_page(language: str) -> web.Response:
    """The console's page, in `language` unless the user picks the other one."""
    html = (STATIC / "console.html").read_text(encoding="utf-8")
    return web.Response(
        text=html.replace(_LANGUAGE_MARK, language),
        content_type="text/html",
        charset="utf-8",
        headers=CONSOLE_CSP,
    )


class LiveStreams:
    """The live streams open now; `idle` is set while there are none."""

    def __init__(self) -> None:
        self.open = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def opened(self) -> None:
        self.open += 1
        self.idle.clear()

    def closed(self) -> None:
        self.open -= 1
        if not self.open:
            self.idle.set()


async def stream(
    request: web.Request,
    feed: CampaignFeed,
    first: dict[str, Any],
    ami_state: Callable[[], str],
    closing: asyncio.Event,
    streams: LiveStreams,
) -> web.StreamResponse:
    """Server-sent events: `snapshot` (`first`), then `update` when the campaign changes, `ami`
    when the PBX link changes, comment lines as a heartbeat. Ends when the browser goes away
    or `closing` is set (the service shuts down)."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    about = LogFields(campaign_id=feed.cid)
    ami = ami_state()
    streams.opened()
    try:
        await _send(response, "snapshot", {**first, "ami": ami})
        sent = time.monotonic()
        while not closing.is_set() and not _gone(request):
            update = await feed.next(STREAM_BLOCK_MS)
            if update is not None:
                await _send(response, "update", {**update, "ami": ami_state()})
            elif ami_state() != ami:
                await _send(response, "ami", {"ami": ami_state()})
            elif time.monotonic() - sent >= HEARTBEAT_SECONDS:
                await response.write(b": heartbeat\n\n")
            else:
                continue
            ami, sent = ami_state(), time.monotonic()
    except _GONE:
        pass  # the browser went away
    except RedisError as exc:
        # Too late for an error status: say it, end the stream; the browser reconnects.
        log.warning("live stream of campaign %s: Redis: %s", feed.cid, exc, extra=about)
        with contextlib.suppress(*_GONE):
            await _send(response, "failure", {"error": "redis_unavailable", "message": str(exc)})
    except Exception:
        # Too late for the error middleware's 500: log it and end the stream.
        log.exception("live stream of campaign %s failed", feed.cid, extra=about)
    finally:
        streams.closed()
    return response


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _send(response: web.StreamResponse, event: str, data: Any) -> None:
    # Server-sent events written here, not with aiohttp-sse: the format is an `event:` line, a
    # `data:` line (one line of JSON) and a blank line, and the loop around it (Redis feed,
    # heartbeat, end on shutdown or when the browser leaves) is ours either way.
    await response.write(f"event: {event}\ndata: {dumps(data)}\n\n".encode())
