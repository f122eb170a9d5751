"""The console in a real headless Chromium (Debian's `chromium`, driven over the DevTools
protocol by `tests/browser.py`), on a real aiohttp server and redis-server, no Asterisk: an
operator runs a drill from a scenario button in French (confirm, then raise a quota, extend,
stop, each seen live), an admin uploads a bad roster then a good one and manages tokens, a
viewer gets no action buttons, the English screens. No bearer token appears in any URL the
page requests (from the browser's request log), and the page's scripts throw nothing.
Screenshots of each screen, in French and English, go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.config import Config
from ivr.dialer.heartbeat import beat
from ivr.health.heartbeat import Heartbeat
from tests import browser
from tests.api.test_console_actions import ROSTER
from tests.api.test_http import Api, start_api
from tests.conftest import unavailable

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def api(db: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    if not browser.CHROMIUM.exists():
        unavailable("chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    made = await start_api(db, Config(audio_dir=tmp_path / "sounds"))
    await made.json("POST", "/api/roster", data=ROSTER.encode())
    yield made
    await made.client.close()


def _url(api: Api, role: str, fragment: str = "") -> str:
    return f"{api.client.make_url('/')}#token={api.tokens[role]}{fragment}"


def _no_token_in_urls(api: Api, page: browser.Page, streams: bool = True) -> None:
    """No token in any URL the page requested (the fragment never leaves the browser); the
    live streams were opened with tickets."""
    assert page.requests, "the request log is empty"
    for url in page.requests:
        for token in api.tokens.values():
            assert token not in url.split("#")[0], url
    opened = [u for u in page.requests if "/stream" in u and "stream-ticket" not in u]
    assert all("?ticket=ivrt_" in u for u in opened), opened
    assert bool(opened) == streams, opened


async def _confirm(page: browser.Page) -> None:
    await page.until("document.querySelector('#dialog').open")
    await page.click("#dialog-ok")
    await page.until("!document.querySelector('#dialog').open")


async def test_an_operator_runs_a_drill_in_french(api: Api) -> None:
    async with browser.chromium() as page:
        await page.goto(_url(api, "operator"))
        await page.until("!document.querySelector('#console').hidden")
        assert await page.run("document.documentElement.lang") == "fr"
        assert await page.text("#whoami") == "operator (opérateur)"
        assert "token" not in await page.run("location.href"), "out of the address bar"
        assert await page.run("document.querySelector('[data-tab=admin]').hidden")
        await page.click("[data-tab=start]")
        await page.until("document.querySelectorAll('#scenarios button.scenario').length === 3")
        button = await page.text('[data-scenario="1"]')
        assert "afflux massif de victimes" in button and "4 personnes" in button
        await page.click('[data-scenario="1"]')
        await page.until("!document.querySelector('#preview').hidden")
        assert await page.text("#preview-targets") == (
            "4 personnes seront appelées, dont 2 d'astreinte en premier."
        )
        roles = await page.run(
            "[...document.querySelectorAll('#preview-roles tr')].map(r => r.innerText)"
        )
        assert roles == ["anaesthetist\t1\t4", "doctor\t1\ttous", "nurse\t2\t25"]
        assert "sages-femmes (midwife) : 2 personnes de plus" in await page.text("#preview-groups")
        assert await page.run("document.querySelector('#preview-drill').checked")
        await page.screenshot(ARTIFACTS / "console-start-fr.png")

        # The first click asks; only the second, explicit one starts.
        await page.click("#preview-start")
        await page.until("document.querySelector('#dialog').open")
        assert "EXERCICE" in await page.text("#dialog-body")
        assert await page.text("#dialog-ok") == "Oui, lancer l'exercice"
        assert (await api.json("GET", "/api/campaigns"))["total"] == 0
        await page.screenshot(ARTIFACTS / "console-confirm-fr.png")
        await _confirm(page)
        await page.until("document.querySelector('#notice').textContent.startsWith('Campagne 1')")
        await page.until("document.querySelector('#link').textContent === 'en direct'")
        # The stream opens (the badge) before its snapshot draws.
        await page.until("document.querySelector('#campaign-title').textContent !== ''")
        assert await page.text("#campaign-title") == "Campagne 1 — plan blanc - afflux massif"
        assert await page.run("!document.querySelector('#drill').hidden")
        assert await page.text("#count-total") == "4"
        # Each person's delivery plan: nobody called yet, the first call due now.
        await page.until("document.querySelectorAll('#people td.plan').length === 4")
        plans = await page.run("[...document.querySelectorAll('#people td.plan')].map(td => "
                               "td.textContent)")  # fmt: skip
        for plan in plans:
            assert re.fullmatch(r"Appel : prévu \d\d:\d\d( · Appel : à venir)+", plan), plan

        # Raise a quota: the bar shows it.
        await page.click("#action-quota")
        await page.until("document.querySelector('#dialog').open")
        await page.run("""(() => { const s = document.querySelector('#dialog-body select');
            s.value = 'nurse'; s.dispatchEvent(new Event('change'));
            document.querySelector('#dialog-body input').value = '30'; })()""")
        await _confirm(page)
        await page.until(
            "document.querySelector('#role-nurse .role-count').textContent === '0 / 30'"
        )
        assert await page.text("#notice") == "Quota nurse : 25 → 30."

        # Extend to the next group: the newcomers show.
        await page.click("#action-extend")
        await page.until("document.querySelector('#dialog').open")
        assert "sages-femmes (midwife) — 2 personnes de plus" in await page.text("#dialog-body")
        await _confirm(page)
        await page.until("document.querySelector('#count-total').textContent === '6'")
        await page.until("document.querySelectorAll('#people tr').length === 6")
        assert await page.text("#notice") == "2 personnes ajoutées (sages-femmes)."
        await page.screenshot(ARTIFACTS / "console-campaign-fr.png")

        # Stop: the focus starts on Cancel, then confirmed.
        await page.click("#action-stop")
        await page.until("document.querySelector('#dialog').open")
        assert await page.run("document.activeElement.id") == "dialog-cancel"
        await _confirm(page)
        await page.until("document.querySelector('#campaign-status').textContent === 'arrêtée'")
        assert await page.run("document.querySelector('#action-stop').disabled")

        log = (await api.json("GET", "/api/audit?who=operator"))["items"]
        assert [e["action"] for e in log] == [
            "campaign.stop", "campaign.extend", "campaign.quota", "campaign.start",
        ]  # fmt: skip
        assert log[-1]["details"]["drill"] is True
        _no_token_in_urls(api, page)
        assert page.errors == []


async def test_an_admin_checks_rosters_and_manages_tokens(api: Api) -> None:
    async with browser.chromium() as page:
        await page.goto(_url(api, "admin"))
        await page.click("[data-tab=admin]")
        await page.until("document.querySelectorAll('#tokens tr').length === 3")
        # The roster summary comes from its own request: wait for it, not for the tokens'.
        await page.until("document.querySelector('#roster-current').textContent !== ''")
        assert (await page.text("#roster-current")).startswith("Annuaire en vigueur : 7 personnes")
        version = (await api.json("GET", "/api/roster?limit=1"))["version"]

        bad = ROSTER + "N1;Twice;nurse;rea;0612345678;0\nB1;Bad;nurse;rea;06&11;0\n"
        await _choose_file(page, bad)
        await page.click("#roster-check")
        await page.until("!document.querySelector('#roster-problems').hidden")
        lines = await page.run(
            "[...document.querySelectorAll('#roster-problems tbody tr')].map(r => r.innerText)"
        )
        assert [line.split("\t")[0] for line in lines] == ["9", "10"]
        assert "duplicate id 'N1'" in lines[0] and "'&'" in lines[1]
        assert (await page.text("#roster-result")).startswith("Fichier refusé (2 lignes en erreur)")
        assert await page.run("document.querySelector('#roster-import').hidden")
        await page.screenshot(ARTIFACTS / "console-roster-refused-fr.png")
        assert (await api.json("GET", "/api/roster?limit=1"))["version"] == version

        good = ROSTER + "N3;Nurse Three;nurse;rea;0612345678;0\n"
        await _choose_file(page, good)
        await page.click("#roster-check")
        await page.until("!document.querySelector('#roster-import').hidden")
        assert "8 personnes" in await page.text("#roster-result")
        assert (await api.json("GET", "/api/roster?limit=1"))["version"] == version
        await page.click("#roster-import")
        await _confirm(page)
        await page.until("document.querySelector('#roster-result').textContent"
                         " === 'Annuaire remplacé : 8 personnes.'")  # fmt: skip
        assert (await api.json("GET", "/api/roster?limit=1"))["total"] == 8

        await page.run("""(() => { document.querySelector('#token-name').value = 'ecran';
            document.querySelector('#token-role').value = 'viewer';
            document.querySelector('#token-form').requestSubmit(); })()""")
        await page.until("!document.querySelector('#token-new').hidden")
        shown = await page.text("#token-value")
        assert shown.startswith("ivr_")
        assert await page.text("#notice") == "Jeton ecran créé (lecture)."
        created = "document.querySelector('#tokens').parentElement.querySelector('th:nth-child(3)')"
        assert await page.run(f"{created}.textContent") == "Créé le"
        api.tokens["ecran"] = shown
        assert (await api.json("GET", "/api/whoami", "ecran"))["role"] == "viewer"
        await page.until("!!document.querySelector('[data-token=ecran]')")
        await page.click("[data-token=ecran]")
        await _confirm(page)
        await page.until("!document.querySelector('[data-token=ecran]')")
        await api.error("GET", "/api/whoami", 401, "revoked_token", "ecran")

        await page.run("""(() => { document.querySelector('#audit-action').value = 'token.';
            document.querySelector('#audit-form').requestSubmit(); })()""")
        await page.until("[...document.querySelectorAll('#audit tr')].length === 2")
        actions = await page.run(
            "[...document.querySelectorAll('#audit tr')].map(r => r.dataset.action)"
        )
        assert actions == ["token.revoke", "token.create"]
        await page.screenshot(ARTIFACTS / "console-admin-fr.png")
        assert shown not in json.dumps(await api.json("GET", "/api/audit"))
        await page.click("[data-tab=campaigns]")
        assert shown not in await page.run("document.body.innerHTML"), "shown once, then gone"
        _no_token_in_urls(api, page, streams=False)
        assert page.errors == []


async def _choose_file(page: browser.Page, text: str) -> None:
    await page.run(f"""(() => {{ const files = new DataTransfer();
        files.items.add(new File([{json.dumps(text)}], "roster.csv", {{type: "text/csv"}}));
        document.querySelector('#roster-file').files = files.files; }})()""")


async def test_a_viewer_gets_no_action_buttons(api: Api) -> None:
    await api.json("POST", "/api/scenarios/2/start", "operator", 201, json={"drill": True})
    async with browser.chromium() as page:
        await page.goto(_url(api, "viewer"))
        await page.until("document.querySelector('#link').textContent === 'en direct'")
        await page.until("document.querySelector('#count-total').textContent === '7'")
        for hidden in ("#actions", "[data-tab=start]", "[data-tab=admin]"):
            assert await page.run(f"document.querySelector('{hidden}').hidden"), hidden
        await _the_platform_in_french(api, page)
        _no_token_in_urls(api, page)
        assert page.errors == []


async def _the_platform_in_french(api: Api, page: browser.Page) -> None:
    """The platform screen (a viewer's too): each site's workers, a silent one flagged, Redis
    without Sentinel, the state and its reason; read again every 5 s."""
    now = time.time()
    await beat(api.db, "a-0", Heartbeat("site-a", 30, 12, True, now, 5.0))
    await beat(api.db, "b-0", Heartbeat("site-b", 20, 3, True, now - 75, 5.0))
    await page.click("[data-tab=cluster]")
    rows = "document.querySelectorAll('#cluster-sites tr[data-worker]')"
    await page.until(f"{rows}.length === 2")
    assert await page.run("document.querySelector('#view-campaigns').hidden")
    assert await page.text("#cluster-state") == "État d'ensemble : à surveiller"
    workers = await page.text("#cluster-checks [data-check=workers]")
    assert workers.startswith("Workers d'appel (à surveiller) : 1 alive (a-0); silent: b-0")
    headings = await page.run(
        "[...document.querySelectorAll('#cluster-sites h4')].map(h => h.textContent)"
    )
    assert headings == ["Site site-a (Asterisk) — 1 worker", "Site site-b (Asterisk) — 1 worker"]
    a0 = (await page.run(f"{rows}[0].innerText")).split("\t")
    assert a0[:3] == ["a-0", "12 / 30", "actif"] and a0[4] == "en service", a0
    assert re.fullmatch(r"il y a \d{1,2} s", a0[3]), a0
    b0 = (await page.run(f"{rows}[1].innerText")).split("\t")
    heard = re.fullmatch(r"il y a (\d+) s", b0[3])
    assert b0[4] == "MUET : arrêté ou bloqué ?" and heard and 75 <= int(heard[1]) < 120, b0
    assert await page.run("document.querySelector('tr[data-worker=b-0]')"
                          ".classList.contains('silent')")  # fmt: skip
    primary = await page.text("#cluster-primary")
    assert primary.startswith("Un seul serveur Redis, sans Sentinel : redis://"), primary
    assert primary.endswith("(rôle : primaire)"), primary
    for shown in ("#cluster-no-replica", "#cluster-no-sentinel"):
        assert not await page.run(f"document.querySelector('{shown}').hidden"), shown
    for empty in ("#cluster-replica-table", "#cluster-sentinel-table"):
        assert await page.run(f"document.querySelector('{empty}').hidden"), empty
    await page.screenshot(ARTIFACTS / "console-cluster-fr.png")
    # A worker that starts shows on the next read, without reloading anything.
    await beat(api.db, "a-1", Heartbeat("site-a", 30, 0, True, time.time(), 5.0))
    await page.until(f"{rows}.length === 3")
    assert await page.text("#cluster-sites h4") == "Site site-a (Asterisk) — 2 workers"


async def test_the_english_screens(api: Api) -> None:
    await api.json("POST", "/api/scenarios/1/start", "operator", 201, json={"drill": True})
    missed = await api.answer("1", "no_answer")
    async with browser.chromium() as page:
        await page.goto(_url(api, "admin", "&lang=en"))
        await page.until("document.querySelector('#link').textContent === 'live'")
        await page.until("document.querySelector('#campaign-title').textContent !== ''")
        assert await page.run("document.documentElement.lang") == "en"
        assert await page.text("#campaign-title") == "Campaign 1 — plan blanc - afflux massif"
        assert await page.text("#campaign-status") == "running"
        assert await page.text("#role-doctor .role-count") == "0 / 1 people"
        # The first call missed, the next one due after the campaign's interval.
        plan = await page.text(f"#people tr[data-person={missed}] td.plan")
        missed_then_due = r"Call: no answer \d\d:\d\d · Call: due \d\d:\d\d( · Call: to come)*"
        assert re.fullmatch(missed_then_due, plan), plan
        await page.screenshot(ARTIFACTS / "console-campaign-en.png")
        await page.click("[data-tab=start]")
        await page.click('[data-scenario="1"]')
        await page.until("!document.querySelector('#preview').hidden")
        assert await page.text("#preview-targets") == "4 people will be called, 2 on call first."
        await page.screenshot(ARTIFACTS / "console-start-en.png")
        await page.click("[data-tab=admin]")
        await page.until("document.querySelectorAll('#audit tr').length > 0")
        await page.until("document.querySelector('#roster-current').textContent !== ''")
        await page.screenshot(ARTIFACTS / "console-admin-en.png")
        # And back to French, by the button: everything shown is redrawn.
        await page.click("#lang-fr")
        assert await page.text("[data-tab=admin]") == "Annuaire et accès"
        await page.click("[data-tab=campaigns]")
        await page.until("document.querySelector('#campaign-status').textContent === 'en cours'")
        assert await page.run("localStorage.getItem('ivr-language')") == "fr"
        assert page.errors == []


async def test_keyboard_only(api: Api) -> None:
    """Tab reaches the actions with a visible focus, Enter opens a dialog, Escape cancels it."""
    await api.json("POST", "/api/scenarios/2/start", "operator", 201, json={"drill": True})
    async with browser.chromium() as page:
        await page.goto(_url(api, "operator"))
        await page.until("document.querySelector('#count-total').textContent === '7'")
        focused = "document.activeElement"
        await page.run(f"{focused}.blur()")
        await page.press("Tab")
        assert await page.run(f"{focused}.className") == "skip", "the first stop skips the header"
        for _ in range(40):
            if await page.run(f"{focused}.id") == "action-stop":
                break
            await page.press("Tab")
        else:
            raise AssertionError("Tab never reached the stop button")
        outline = await page.run(f"getComputedStyle({focused}).outlineStyle")
        width = await page.run(f"parseFloat(getComputedStyle({focused}).outlineWidth)")
        assert outline != "none" and width >= 3, "the focus is visible"
        assert await page.run(f"{focused}.getBoundingClientRect().height") >= 44, "a large target"
        await page.press("Enter")
        await page.until("document.querySelector('#dialog').open")
        assert await page.run(f"{focused}.id") == "dialog-cancel"
        await page.press("Escape")
        await page.until("!document.querySelector('#dialog').open")
        # Nothing was stopped, and the focus is back where it was.
        assert await page.run(f"{focused}.id") == "action-stop"
        assert (await api.json("GET", "/api/campaigns/1", "viewer"))["status"] == "running"
        # Enter on the focused Cancel cancels too.
        await page.press("Enter")
        await page.until("document.querySelector('#dialog').open")
        await page.press("Enter")
        await page.until("!document.querySelector('#dialog').open")
        assert (await api.json("GET", "/api/campaigns/1", "viewer"))["status"] == "running"
        # A campaign row is chosen from the keyboard as well.
        await page.run("document.querySelector('#campaign-list tr').focus()")
        await page.press("Enter")
        assert await page.run("location.hash") == "#campaign=1"
        assert page.errors == []


async def test_a_free_campaign_from_the_form(api: Api) -> None:
    async with browser.chromium() as page:
        await page.goto(_url(api, "operator", "&lang=en"))
        await page.click("[data-tab=start]")
        await page.run("document.querySelector('#free').open = true")
        await page.until("!!document.querySelector('#free-quota-nurse')")
        await page.run("""(() => {
            document.querySelector('#free-message-fr').value = 'Renfort demandé en réanimation.';
            document.querySelector('#free-name').value = 'renfort rea';
            document.querySelector('input[name=free-role][value=nurse]').checked = true;
            document.querySelector('input[name=free-role][value=doctor]').checked = true;
            document.querySelector('#free-quota-nurse').value = '1';
            document.querySelector('#free-attempts').value = '2';
            document.querySelector('#free-amd').checked = false; })()""")
        await page.click("#free-estimate-button")
        await page.until("document.querySelector('#free-estimate').textContent !== ''")
        assert (await page.text("#free-estimate")).startswith("3 people would be called;")
        assert (await api.json("GET", "/api/campaigns"))["total"] == 0
        await page.screenshot(ARTIFACTS / "console-free-en.png")
        await page.run("document.querySelector('#free-form').requestSubmit()")
        await page.until("document.querySelector('#dialog').open")
        assert "3 people will be called now." in await page.text("#dialog-body")
        assert await page.text("#dialog-ok") == "Yes, start the drill"
        await _confirm(page)
        await page.until("document.querySelector('#campaign-title').textContent"
                         " === 'Campaign 1 — renfort rea'")  # fmt: skip
        [entry] = (await api.json("GET", "/api/audit?action=campaign.start"))["items"]
        assert entry["who"] == "operator"
        assert entry["details"] | {"total": 3} == {
            "name": "renfort rea", "drill": True, "roles": ["doctor", "nurse"], "units": [],
            "quotas": {"nurse": 1}, "total": 3,
        }  # fmt: skip
        spec = json.loads(await api.db.hget("ivr:campaign:1", "spec") or "{}")
        assert (spec["attempts"], spec["amd"], spec["escalate"]) == (2, False, True)
        assert page.errors == []


async def test_accessibility_of_each_screen(api: Api) -> None:
    """axe-core (its default rules, WCAG 2 A and AA among them) on each screen and dialog, in
    French: no finding at all, whatever its impact."""
    if not browser.AXE.exists():
        unavailable("axe-core is not installed (scripts/setup)")
    await api.json("POST", "/api/scenarios/1/start", "operator", 201, json={"drill": True})
    findings: dict[str, list[dict[str, object]]] = {}
    async with browser.chromium() as page:
        await page.goto(str(api.client.make_url("/")))
        await page.until("!document.querySelector('#login').hidden")
        # The tabs once showed (and took clicks that did nothing) before a token was checked.
        assert await page.run("document.querySelector('#tabs').offsetParent === null")
        findings["login"] = await page.accessibility()
        await page.goto(_url(api, "admin"))
        await page.run("location.reload()")
        await page.until("document.querySelector('#campaign-title').textContent !== ''")
        findings["campaign"] = await page.accessibility()
        await page.click("#action-extend")
        await page.until("document.querySelector('#dialog').open")
        findings["extend dialog"] = await page.accessibility()
        await page.press("Escape")
        await page.click("[data-tab=start]")
        await page.click('[data-scenario="1"]')
        await page.until("!document.querySelector('#preview').hidden")
        await page.run("document.querySelector('#free').open = true")
        await page.until("!!document.querySelector('#free-quota-nurse')")
        findings["start"] = await page.accessibility()
        await page.click("[data-tab=admin]")
        await page.until("document.querySelectorAll('#audit tr').length > 0")
        findings["admin"] = await page.accessibility()
        await beat(api.db, "a-0", Heartbeat("site-a", 30, 2, False, time.time() - 60, 5.0))
        await page.click("[data-tab=cluster]")
        await page.until("!!document.querySelector('#cluster-sites tr[data-worker]')")
        findings["platform"] = await page.accessibility()
    (ARTIFACTS / "console-axe.json").write_text(json.dumps(findings, indent=1))
    assert findings == {screen: [] for screen in findings}, json.dumps(findings, indent=1)
