"""The console's routes through aiohttp's test client on a real redis-server (no Asterisk): the
page and its files, the report page and CSV, and the live stream of server-sent events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse

from ivr import keys
from ivr.access.tokens import Role, TokenStore
from ivr.api import console
from ivr.api.app import streams_key
from ivr.campaign.scheduler import Scheduler
from ivr.config import Config
from ivr.sandbox.redisserver import RedisServer
from tests.api.test_http import Api, start_api
from tests.cli import test_campaign as cli


@pytest.fixture
async def api(db: aioredis.Redis) -> AsyncIterator[Api]:
    made = await start_api(db, Config())
    yield made
    await made.client.close()


async def test_console_page_and_files_need_nothing_from_outside(api: Api) -> None:
    page = await api.call("GET", "/", role=None)
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    sources = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert sorted(sources) == ["/console.css", "/console.js"]
    for path, kind in (("/console.js", "text/javascript"), ("/console.css", "text/css"),
                       ("/console-catalogue.json", "application/json")):  # fmt: skip
        response = await api.call("GET", path, role=None)
        assert (response.status, response.content_type) == (200, kind)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", await response.text())


async def test_report_page_and_csv(api: Api) -> None:
    await api.roster()
    cid = await api.start(roles=["doctor"], quotas={"doctor": 1}, drill=True, name="exercice")
    pid = await api.answer(cid)

    page = await api.call("GET", f"/api/campaigns/{cid}/report.html", "viewer")
    assert (page.status, page.content_type) == (200, "text/html")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    html = await page.text()
    assert "DRILL / EXERCICE" in html and "exercice" in html and "<svg" in html
    assert "Comparison with previous drills" in html
    name = "Doctor One" if pid == "D1" else "Doctor Two"
    assert re.search(rf"<td>{name}</td><td>{pid}</td><td>doctor</td>.*?available", html)

    csv = await api.call("GET", f"/api/campaigns/{cid}/attempts.csv", "viewer")
    assert (csv.status, csv.content_type) == (200, "text/csv")
    lines = (await csv.text()).splitlines()
    assert lines[0] == "id;name;role;unit;outcome;answered_by;eta;attempts"
    assert any(line.startswith(f"{pid};") and ";available;voice;" in line for line in lines)

    for path in ("report.html", "attempts.csv"):
        await api.error("GET", f"/api/campaigns/404/{path}", 404, "campaign_not_found", "viewer")
        await api.error("GET", f"/api/campaigns/{cid}/{path}", 401, "missing_token", None)
        # A token in the address is for the stream alone.
        token = api.tokens["viewer"]
        await api.error(
            "GET", f"/api/campaigns/{cid}/{path}?token={token}", 401, "missing_token", None
        )


async def test_drill_report_compares_with_earlier_drills_only(api: Api) -> None:
    await api.roster()
    first = await api.start(drill=True, name="drill one")
    await api.start(name="real alert")
    second = await api.start(drill=True, name="drill two")
    await api.start(drill=True, name="drill three")
    html = await (await api.call("GET", f"/api/campaigns/{second}/report.html")).text()
    table = html.split("Comparison with previous drills")[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\d+)</td>", table) == [second, first]


class Sse:
    """Reads server-sent events from a response."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, timeout: float = 10) -> tuple[str, dict[str, Any]]:
        async def read() -> tuple[str, dict[str, Any]]:
            event, data = "message", ""
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
                elif line == "" and data:
                    return event, json.loads(data)

        return await asyncio.wait_for(read(), timeout)


async def test_stream_snapshot_then_updates(api: Api) -> None:
    await api.roster()
    cid = await api.start(roles=["doctor"])
    response = await api.call("GET", await stream_url(api, cid), role=None)
    assert (response.status, response.content_type) == (200, "text/event-stream")
    sse = Sse(response)
    kind, snap = await sse.next()
    assert kind == "snapshot" and snap["campaign"] == cid and snap["ami"] == "unconfigured"
    assert snap["report"]["total"] == 2 and snap["calling"] == []
    assert sorted(p["id"] for p in snap["people"]) == ["D1", "D2"]
    assert [e["type"] for e in snap["events"]] == ["started"]

    # A claim writes no event: the update comes from the calls in flight.
    scheduler = Scheduler(api.db)
    now = int(time.time() * 1000) + 1000
    claim = await scheduler.claim(cid, now, lease_ms=30_000, worker="w", asterisk="a")
    assert claim is not None
    kind, update = await sse.next()
    assert kind == "update" and update["calling"] == [claim.pid]
    assert [(p["id"], p["state"]) for p in update["people"]] == [(claim.pid, "calling")]
    assert update["report"]["in_flight"] == 1

    await scheduler.finish(
        cid, claim.pid, claim.attempt, "available", now, worker="w", number=claim.number, detail=""
    )
    kind, update = await sse.next()
    assert kind == "update"
    assert [e["type"] for e in update["events"]] == ["final"], "attempts stay server-side"
    assert update["events"][0]["pid"] == claim.pid
    assert update["report"]["available"] == 1
    person = next(p for p in update["people"] if p["id"] == claim.pid)
    assert (person["state"], person["outcome"]) == ("done", "available")
    response.close()


async def stream_url(api: Api, cid: str, role: str = "viewer") -> str:
    """The stream's address as the console opens it: with a ticket, asked for with the token."""
    got = await api.json("POST", f"/api/campaigns/{cid}/stream-ticket", role)
    assert got["expires_in"] == 30 and got["ticket"].startswith("ivrt_")
    assert api.tokens[role] not in json.dumps(got)
    return f"/api/campaigns/{cid}/stream?ticket={got['ticket']}"


async def test_stream_auth_and_unknown_campaign(api: Api) -> None:
    await api.roster()
    cid = await api.start()
    path = f"/api/campaigns/{cid}/stream"
    await api.error("GET", path, 401, "missing_token", None)
    await api.error("GET", f"{path}?ticket=nope", 401, "invalid_ticket", None)
    await api.error("GET", "/api/campaigns/99/stream", 404, "campaign_not_found", "viewer")
    await api.error("POST", "/api/campaigns/99/stream-ticket", 404, "campaign_not_found", "viewer")
    response = await api.call("GET", path, "viewer")  # the header works too
    assert response.status == 200
    response.close()


async def test_a_token_in_the_url_is_refused_even_a_good_one(api: Api) -> None:
    await api.roster()
    cid = await api.start()
    path = f"/api/campaigns/{cid}/stream"
    for role in ("viewer", "admin", "revoked"):
        body = await api.error("GET", f"{path}?token={api.tokens[role]}", 401, "token_in_url", None)
        assert "stream-ticket" in body["message"] and api.tokens[role] not in json.dumps(body)
    # Not even beside a valid ticket.
    url = await stream_url(api, cid)
    await api.error("GET", f"{url}&token={api.tokens['viewer']}", 401, "token_in_url", None)


async def test_a_ticket_opens_one_stream_once(api: Api) -> None:
    await api.roster()
    cid = await api.start()
    url = await stream_url(api, cid)
    response = await api.call("GET", url, role=None)
    assert response.status == 200
    kind, snap = await Sse(response).next()
    assert kind == "snapshot" and snap["campaign"] == cid
    response.close()
    await api.error("GET", url, 401, "invalid_ticket", None)  # used

    # Two requests racing with one ticket: exactly one gets in.
    url = await stream_url(api, cid)
    answers = await asyncio.gather(*(api.call("GET", url, role=None) for _ in range(2)))
    assert sorted(r.status for r in answers) == [200, 401]
    for r in answers:
        r.close()


async def test_a_ticket_is_for_its_campaign_and_expires(api: Api) -> None:
    await api.roster()
    first, second = await api.start(), await api.start()
    url = await stream_url(api, first)
    ticket = url.partition("ticket=")[2]
    await api.error("GET", f"/api/campaigns/{second}/stream?ticket={ticket}", 401,
                    "invalid_ticket", None)  # fmt: skip
    await api.error("GET", url, 401, "invalid_ticket", None)  # tried once: used up

    # Stored hashed, with a lifetime: Redis drops it after 30 s.
    url = await stream_url(api, first)
    ticket = url.partition("ticket=")[2]
    stored = [k async for k in api.db.scan_iter(match=f"{keys.stream_ticket_prefix}*")]
    assert len(stored) == 1 and ticket not in stored[0]
    assert stored[0] == keys.stream_ticket_prefix + hashlib.sha256(ticket.encode()).hexdigest()
    assert 0 < await api.db.ttl(stored[0]) <= 30
    assert ticket not in (await api.db.get(stored[0]) or "")
    assert api.tokens["viewer"] not in (await api.db.get(stored[0]) or "")
    await api.db.expire(stored[0], 0)  # what its expiry does
    await api.error("GET", url, 401, "invalid_ticket", None)


async def test_revoking_a_token_voids_its_tickets(api: Api) -> None:
    await api.roster()
    cid = await api.start()
    token = await TokenStore(api.db).create("screen", Role.viewer)
    api.tokens["screen"] = token
    url = await stream_url(api, cid, "screen")
    await TokenStore(api.db).revoke("screen")
    await api.error("GET", url, 401, "revoked_token", None)


async def test_stream_heartbeat_and_client_going_away(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "HEARTBEAT_SECONDS", 0.0)
    monkeypatch.setattr(console, "STREAM_BLOCK_MS", 50)
    await api.roster()
    cid = await api.start()
    response = await api.call("GET", f"/api/campaigns/{cid}/stream", "viewer")
    sse = Sse(response)
    await sse.next()
    line = await asyncio.wait_for(response.content.readline(), 5)
    assert line == b": heartbeat\n"
    streams = api.client.app[streams_key]  # type: ignore[index]
    assert streams.open == 1
    response.close()
    await asyncio.wait_for(streams.idle.wait(), 5)


async def test_service_shutdown_ends_open_streams(db: aioredis.Redis) -> None:
    api = await start_api(db, Config())
    await api.roster()
    cid = await api.start()
    response = await api.call("GET", f"/api/campaigns/{cid}/stream", "viewer")
    await Sse(response).next()
    started = time.monotonic()
    # aiohttp would wait 60 s for a handler that does not end by itself.
    await asyncio.wait_for(api.client.close(), 10)
    assert time.monotonic() - started < 5
    assert api.client.app[streams_key].open == 0  # type: ignore[index]


def test_cli_report_html(redis_server: RedisServer, tmp_path: Path) -> None:
    url = redis_server.url
    roster = tmp_path / "roster.csv"
    roster.write_text(cli.ROSTER, encoding="utf-8")
    assert cli.ivr(url, "roster", "import", str(roster), tmp=tmp_path).returncode == 0
    started = cli.ivr(url, "campaign", "start", "-m", "Exercice.", "--drill", tmp=tmp_path)
    assert started.returncode == 0, started.stderr

    out = tmp_path / "report.html"
    done = cli.ivr(url, "campaign", "report", "1", "--html", str(out), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"report written to {out}" in done.stderr
    html = out.read_text(encoding="utf-8")
    assert "DRILL / EXERCICE" in html and "<svg" in html
    latest = cli.ivr(url, "campaign", "report", "--html", tmp=tmp_path)
    assert latest.stdout.startswith("<!DOCTYPE html>") and "Campaign 1" in latest.stdout

    nowhere = cli.ivr(url, "campaign", "report", "1", "--html", "/nonexistent/r.html", tmp=tmp_path)
    assert nowhere.returncode == 2 and "--html: cannot write /nonexistent/r.html" in nowhere.stderr
    missing = cli.ivr(url, "campaign", "report", "9", "--html", tmp=tmp_path)
    assert missing.returncode == 2 and "campaign 9 not found" in missing.stderr
