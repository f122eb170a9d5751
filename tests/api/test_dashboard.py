"""The console in a real headless Chromium (Debian's `chromium`, driven by playwright's client:
never its own browser download) following a campaign on the sandbox Asterisk, with the service
and the dialer worker in this process. Screenshots of the dashboard and of the report go to
test-artifacts/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from ivr.access.tokens import Role, TokenStore
from ivr.api.app import make_app
from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from tests.api.test_http import free_port
from tests.campaigntools import person, states, wait_done
from tests.conftest import unavailable

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Playwright's waits, in ms: calls last several seconds each.
LONG = 90_000


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; skipped without it, failed under CI."""
    if not CHROMIUM.exists():
        unavailable("chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
        raise
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium))
        yield browser
        await browser.close()


async def test_dashboard_follows_a_campaign(
    browser: Any, alerter: Alerter, sandbox_config: Config, db: aioredis.Redis
) -> None:
    from playwright.async_api import expect

    # Simulated phones (ivr/dialplans/ivr-sim.conf): 116MM rings 1 s, presses 1 and keys MM
    # minutes to arrival; 112 rings 1 s and presses 2.
    staff = [
        person("n1", "nurse", "1161501"),
        person("n2", "nurse", "1163002", unit="rea"),
        person("n3", "nurse", "1120003"),
        person("n4", "nurse", "1164504"),
        person("d1", "doctor", "1162005", unit="rea"),
        person("d2", "doctor", "1120006"),
    ]
    spec = CampaignSpec(
        messages={"fr": "Exercice plan blanc."}, name="exercice nuit", drill=True,
        quotas={"nurse": 3}, ring_timeout=6, amd=False, retry_delay=1,
    )  # fmt: skip
    cid = await store.create(db, spec, staff)
    token = await TokenStore(db).create("screen", Role.viewer)
    server = TestServer(
        make_app(sandbox_config, db, link=alerter.link, speaker=alerter.speaker), port=free_port()
    )
    await server.start_server()
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        page = await browser.new_page(viewport={"width": 1600, "height": 1400})
        await page.goto(f"{server.make_url('/')}#lang=en&token={token}&campaign={cid}")
        await expect(page.locator("#count-total")).to_have_text("6")
        await expect(page.locator("#count-available")).to_have_text("0")
        await expect(page.locator("#count-pending")).to_have_text("6")
        await expect(page.locator("#pbx")).to_have_text("PBX link: up")
        await expect(page.locator("#drill")).to_be_visible()
        assert "token" not in page.url, "the token leaves the address bar"

        worker = asyncio.create_task(
            DialerWorker(alerter, db, WorkerSettings(name="w0", capacity=2)).run(stop)
        )
        # Live: calls in flight show while they ring, then the answers come in.
        await expect(page.locator("#count-in_flight")).not_to_have_text("0", timeout=LONG)
        await expect(page.locator("td.calling").first).to_be_visible(timeout=LONG)
        await expect(page.locator("#count-available")).to_have_text("1", timeout=LONG)
        report = await wait_done(db, cid)
        await expect(page.locator("#campaign-status")).to_have_text("done", timeout=LONG)

        # The page ends up with the campaign's own numbers.
        for key in ("available", "unavailable", "pending", "in_flight", "total"):
            await expect(page.locator(f"#count-{key}")).to_have_text(str(report[key]))
        assert report["available"] == 4 and report["by_role"]["nurse"]["met"]
        await expect(page.locator("#role-nurse .role-count")).to_have_text("3 / 3")
        await expect(page.locator("#role-doctor .role-count")).to_have_text("1 / 2 people")
        for pid, state in (await states(db, cid)).items():
            row = page.locator(f'#people tr[data-person="{pid}"]')
            await expect(row).to_contain_text(state["o"])
        await expect(page.locator("#curve-available")).to_have_attribute("data-count", "4")
        arrivals = report["forecast"]["+30"] + report["forecast"]["+60"]
        await expect(page.locator("#count-forecast")).to_have_text(str(arrivals))
        await expect(page.locator(f'#campaign-list tr[data-campaign="{cid}"]')).to_contain_text(
            "done"
        )
        await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

        # The report, as the console opens it (fetched with the token, shown from memory).
        async with page.expect_popup() as popup_info:
            await page.click("#open-report")
        popup = await popup_info.value
        await expect(popup.locator("h1")).to_contain_text(f"Campaign {cid}")
        await expect(popup.locator(".drill")).to_be_visible()
        await expect(popup.locator("svg polyline")).to_have_count(2)
        answers = popup.locator("h2:text('Answers') + table tbody tr")
        await expect(answers).to_have_count(report["available"] + report["unavailable"])
        text = await popup.inner_text("body")
        assert re.search(r"nurse\s+4\s+3\s+3\s+yes", text), "per role: people, available, quota"
        await popup.screenshot(path=ARTIFACTS / "report.png", full_page=True)
    finally:
        stop.set()
        if worker is not None:
            await worker
        await server.close()


async def test_console_asks_for_a_token_and_keeps_it_for_the_tab(
    browser: Any, db: aioredis.Redis
) -> None:
    from playwright.async_api import expect

    staff = [person("n1", "nurse", "1161501"), person("n2", "nurse", "1120002")]
    spec = CampaignSpec(messages={"fr": "Alerte."}, name="sans lignes")
    cid = await store.create(db, spec, staff)  # no worker: it stays pending
    token = await TokenStore(db).create("screen", Role.viewer)
    server = TestServer(make_app(Config(), db), port=free_port())
    await server.start_server()
    try:
        page = await browser.new_page()
        await page.goto(f"{server.make_url('/')}#lang=en")
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#pbx")).to_have_text("PBX link: unconfigured")
        await page.fill("#token", "ivr_not-a-token")
        await page.click("#login button")
        await expect(page.locator("#login-error")).to_have_text("unknown token")
        await page.fill("#token", token)
        await page.click("#login button")
        # The running campaign is chosen by itself.
        await expect(page.locator("#campaign-title")).to_have_text(f"Campaign {cid} — sans lignes")
        await expect(page.locator("#count-pending")).to_have_text("2")
        await expect(page.locator("#people tr")).to_have_count(2)
        await expect(page.locator("#link")).to_have_text("live")
        await page.reload()  # sessionStorage: still logged in
        await expect(page.locator("#count-total")).to_have_text("2")
        await page.click("#logout")
        await expect(page.locator("#login")).to_be_visible()
        await page.reload()
        await expect(page.locator("#login")).to_be_visible()
    finally:
        await server.close()
