"""The console page itself (no browser here): the served HTML and script carry one catalogue
of words in French and English, the page is in the installation's language, every string
comes from the catalogue, numbers and dates are formatted for the language (run in Node.js),
and each flow of the page works through the API calls the page makes, over a real aiohttp
server and redis-server, its effect seen on the live stream.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.access.tokens import Role
from ivr.api import console, guard
from ivr.campaign import progress
from ivr.campaign.plan import SMS, VOICE
from ivr.campaign.report import SMS_RESULTS
from ivr.campaign.state import STATUSES
from ivr.config import Config
from ivr.errors import IvrError
from ivr.health.state import State
from ivr.outcomes import Outcome
from tests.api.test_console import Sse
from tests.api.test_console_actions import ROSTER
from tests.api.test_http import Api, start_api
from tests.conftest import unavailable

STATIC = console.STATIC
SCRIPT = (STATIC / "console.js").read_text(encoding="utf-8")
CATALOGUE: dict[str, dict[str, str]] = json.loads((STATIC / "catalogue.json").read_text())


@pytest.fixture
async def api(db: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    made = await start_api(db, Config(audio_dir=tmp_path / "sounds"))
    yield made
    await made.client.close()


# -- the catalogue ------------------------------------------------------------------------


def test_french_and_english_say_the_same_things() -> None:
    assert set(CATALOGUE) == {"fr", "en"}
    fr, en = CATALOGUE["fr"], CATALOGUE["en"]
    assert set(fr) == set(en)
    for key in fr:
        assert fr[key].strip() and en[key].strip(), key
        placeholders = [set(re.findall(r"\{(\w+)\}", words[key])) for words in (fr, en)]
        assert placeholders[0] == placeholders[1], key
        if key.endswith(".one"):  # a singular form goes with its plural
            assert key.removesuffix(".one") in fr, key
    assert (fr["locale"], en["locale"]) == ("fr-FR", "en-GB")
    assert fr["tabs.start"] != en["tabs.start"], "French is French"


def _keys_used() -> set[str]:
    found = set(re.findall(r'\bt\("([^"]+)"', SCRIPT))
    # t(drill ? "confirm.ok_drill" : "confirm.ok_real") and the like.
    for pair in re.findall(r'\? "([a-z_]+\.[a-z_]+)" : "([a-z_]+\.[a-z_]+)"', SCRIPT):
        found.update(pair)
    found |= {f"link.{k}" for k in re.findall(r'showLink\("\w+", "link\.(\w+)"\)', SCRIPT)}
    found |= set(re.findall(r'data-i18n(?:-aria-label)?="([^"]+)"', _page_source()))
    return found


def _page_source() -> str:
    return (STATIC / "console.html").read_text(encoding="utf-8")


def test_every_word_the_page_uses_is_in_the_catalogue() -> None:
    used = _keys_used()
    assert len(used) > 140
    # A key ending with "." is a prefix, completed with a code: checked below.
    missing = sorted(k for k in used if k not in CATALOGUE["fr"] and not k.endswith("."))
    assert not missing
    # Words looked up by a code the API gives: every code it can give has its words.
    codes = {
        "status.": {"running", "done", "stopped", "failed"},
        "state.": {*STATUSES.values(), "unknown", *(o.value for o in Outcome)},
        "role.": {r.value for r in Role},
        "pbx.": {"up", "down", "unconfigured", "unknown", "unreachable"},
        "plan.": set(progress.STATES) - {"done"},
        "channel.": {VOICE, SMS},
        "smsresult.": set(SMS_RESULTS) - {"answered"},
        "language.": {"fr", "en"},
        "action.": set(
            json.loads(re.search(r"AUDIT_ACTIONS = (\[[^\]]*\])", SCRIPT)[1].replace("\n", ""))
        ),  # fmt: skip
        "error.": {cls.error_id for cls in guard.HTTP_STATUS if cls is not IvrError}
        | {"missing_token", "invalid_token", "revoked_token", "redis_unavailable"},
        # The platform screen (GET /api/cluster): the checks of `service_report` and their
        # states, a worker's state, Redis's roles and a replica's states, a Sentinel's view.
        "health.": {s.name.lower() for s in State},
        "check.": {"redis", "workers", "ami"},
        "wstate.": {"working", "no_ami", "silent"},
        "redisrole.": {"master", "slave"},
        "replica.": {"online", "wait_bgsave", "send_bulk"},
        "sview.": {"agrees", "other", "down"},
    }
    for prefix, values in codes.items():
        assert re.search(rf'label\("{re.escape(prefix)}"|t\("{re.escape(prefix)}" \+', SCRIPT) or (
            prefix == "error."
        ), prefix
        absent = sorted(v for v in values if prefix + v not in CATALOGUE["fr"])
        assert not absent, (prefix, absent)


class _Text(HTMLParser):
    """Text of the page outside the elements the script fills from the catalogue."""

    VOID = {"meta", "link", "input", "br", "img"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str | None]] = []
        self.loose: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(dict(attrs) | {"<tag>": tag})

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()["<tag>"] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not data.strip() or any(t["<tag>"] in ("script", "style") for t in self.stack):
            return
        # The language buttons name each language in its own language.
        if any("lang" in t for t in self.stack):
            return
        self.loose.append(data.strip())


async def test_the_page_is_in_the_installation_language(db: aioredis.Redis) -> None:
    for language in ("fr", "en"):
        api = await start_api(db, Config(language=language))
        try:
            page = await api.call("GET", "/", role=None)
            html = await page.text()
            assert f'<html lang="{language}" data-default-language="{language}">' in html
            assert "__IVR_LANGUAGE__" not in html
            csp = page.headers["Content-Security-Policy"]
            assert "media-src 'self' blob:" in csp and "frame-ancestors 'none'" in csp
            words = await api.call("GET", "/console-catalogue.json", role=None)
            assert words.status == 200 and words.content_type == "application/json"
            assert await words.json() == CATALOGUE
            for name, value in (("X-Content-Type-Options", "nosniff"),
                                ("Cache-Control", "no-store")):  # fmt: skip
                assert words.headers[name] == value and page.headers[name] == value
        finally:
            await api.client.close()
            await db.flushall()


def test_no_word_in_the_page_outside_the_catalogue() -> None:
    parser = _Text()
    parser.feed(_page_source())
    assert parser.loose == []
    # Nor in the script: what it shows goes through t() or label(); only codes and symbols
    # remain between quotes in textContent assignments.
    shown = re.findall(r'textContent = "([^"]*)"', SCRIPT)
    assert all(text == "" for text in shown), shown


def test_the_script_never_puts_the_token_in_a_url() -> None:
    code = "\n".join(line for line in SCRIPT.splitlines() if not line.strip().startswith("//"))
    assert "token=" not in code and "token:" not in code.lower().replace("token: null", "")
    assert "/stream-ticket" in SCRIPT and '"/stream?ticket="' in SCRIPT
    assert "sessionStorage" in SCRIPT and "localStorage.setItem(TOKEN" not in SCRIPT
    assert '"Bearer " + view.token' in SCRIPT


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        unavailable("Node.js is not installed (apt-get install nodejs)")
    assert node is not None
    return node


def test_the_script_parses() -> None:
    done = subprocess.run([_node(), "--check", str(STATIC / "console.js")],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_words_numbers_and_dates_in_each_language(tmp_path: Path) -> None:
    """The script's own t(), num(), when() and label(), run in Node.js with the catalogue."""
    part = SCRIPT.split("// -- words, numbers, dates")[1].split("\n", 1)[1]
    part = part.split("function chooseLanguage")[0]
    program = tmp_path / "words.js"
    program.write_text(
        f"const view = {{ language: 'fr', catalogue: {json.dumps(CATALOGUE)} }};\n{part}\n"
        "process.env.TZ = 'UTC';\nconst out = {};\n"
        "for (const language of ['fr', 'en']) {\n"
        "  view.language = language;\n"
        "  out[language] = [num(1234567.5), num(null), when(1764670910), clock(1764670910),\n"
        "    t('campaign.title', {id: 12, name: 'nuit'}), label('status.', 'running'),\n"
        "    label('status.', 'weird'), t('people.more', {n: num(2500)}), t('no.such.key'),\n"
        "    ...[0, 1, 2].map((count) => t('extend.done', {n: num(count), count, group: 'g'}))];\n"
        "}\nconsole.log(JSON.stringify(out));\n",
        encoding="utf-8",
    )
    done = subprocess.run([_node(), str(program)], capture_output=True, text=True, timeout=30,
                          env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    nbsp = "\u202f"  # French groups digits with a narrow no-break space
    assert out["fr"] == [
        f"1{nbsp}234{nbsp}567,5",
        "—",
        "02/12/2025 10:21:50",
        "10:21",
        "Campagne 12 — nuit",
        "en cours",
        "weird",
        f"… et 2{nbsp}500 de plus (voir le rapport)",
        "no.such.key",
        "0 personne ajoutée (g).",
        "1 personne ajoutée (g).",
        "2 personnes ajoutées (g).",
    ]
    assert out["en"] == [
        "1,234,567.5",
        "—",
        "02/12/2025, 10:21:50",
        "10:21",
        "Campaign 12 — nuit",
        "running",
        "weird",
        "… and 2,500 more (see the report)",
        "no.such.key",
        "0 people added (g).",
        "1 person added (g).",
        "2 people added (g).",
    ]


# -- the flows, through the calls the page makes ------------------------------------------


def test_the_page_makes_these_calls() -> None:
    for call in ('"/api/whoami"', '"/api/scenarios"', '"/api/scenarios/" + encodeURIComponent',
                 '"/audio?language="', '"/start", { drill }', '"/stream-ticket"',
                 'campaignPath("/stop")', 'campaignPath("/quota")', 'campaignPath("/extend")',
                 'campaignPath("/extensions")', '"/api/roster/check"', '"/api/roster"',
                 '"/api/pins"', '"/api/tokens"', '"DELETE"', '"/api/audit?"',
                 '"/api/roster/summary"', '"/api/campaigns/estimate"',
                 '"/api/campaigns", body', '"/api/cluster"'):  # fmt: skip
        assert call in SCRIPT, call


async def test_an_operator_runs_a_drill_from_the_console(api: Api) -> None:
    await api.json("POST", "/api/roster", data=ROSTER.encode())
    assert await api.json("GET", "/api/whoami", "operator") == {
        "name": "operator", "role": "operator",
    }  # fmt: skip
    buttons = (await api.json("GET", "/api/scenarios", "operator"))["items"]
    assert [b["key"] for b in buttons] == ["1", "2", "3"]
    preview = await api.json("GET", "/api/scenarios/1", "operator")
    assert preview["targets"] == 4
    report = await api.json("POST", "/api/scenarios/1/start", "operator", 201,
                            json={"drill": True})  # fmt: skip
    cid = str(report["campaign"])
    listed = (await api.json("GET", "/api/campaigns?limit=20", "operator"))["items"]
    assert listed[0]["id"] == cid and listed[0]["drill"] is True

    ticket = (await api.json("POST", f"/api/campaigns/{cid}/stream-ticket", "operator"))["ticket"]
    stream = await api.call("GET", f"/api/campaigns/{cid}/stream?ticket={ticket}", role=None)
    sse = Sse(stream)
    kind, snap = await sse.next()
    assert kind == "snapshot" and snap["report"]["by_role"]["nurse"]["quota"] == 25

    # Raise a quota: seen live.
    await api.json("POST", f"/api/campaigns/{cid}/quota", "operator",
                   json={"role": "nurse", "quota": 30})  # fmt: skip
    kind, update = await sse.next()
    assert kind == "update" and update["report"]["by_role"]["nurse"]["quota"] == 30
    # Extend to the next group: the newcomers arrive live.
    options = await api.json("GET", f"/api/campaigns/{cid}/extensions", "operator")
    assert options["groups"][0]["new"] == 2
    await api.json("POST", f"/api/campaigns/{cid}/extend", "operator", json={})
    kind, update = await sse.next()
    assert update["report"]["total"] == 6
    assert [e["type"] for e in update["events"]] == ["extended"]
    # On "extended" the page opens the stream again, with a new ticket: all the people.
    stream.close()
    ticket = (await api.json("POST", f"/api/campaigns/{cid}/stream-ticket", "operator"))["ticket"]
    stream = await api.call("GET", f"/api/campaigns/{cid}/stream?ticket={ticket}", role=None)
    sse = Sse(stream)
    kind, snap = await sse.next()
    assert kind == "snapshot" and {"M1", "M2"} <= {p["id"] for p in snap["people"]}
    # Stop, confirmed on the page: seen live.
    await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    kind, update = await sse.next()
    while update["report"]["status"] != "stopped":
        kind, update = await sse.next()
    stream.close()
    log = (await api.json("GET", f"/api/audit?target={cid}"))["items"]
    assert [(e["action"], e["who"]) for e in log] == [
        ("campaign.stop", "operator"), ("campaign.extend", "operator"),
        ("campaign.quota", "operator"), ("campaign.start", "operator"),
    ]  # fmt: skip


async def test_a_viewer_sees_and_cannot_act(api: Api) -> None:
    await api.json("POST", "/api/roster", data=ROSTER.encode())
    cid = str(
        (await api.json("POST", "/api/scenarios/2/start", "operator", 201, json={}))["campaign"]
    )
    assert (await api.json("GET", "/api/whoami", "viewer"))["role"] == "viewer"
    # What the page shows a viewer works...
    await api.json("GET", "/api/scenarios/2", "viewer")
    await api.json("POST", f"/api/campaigns/{cid}/stream-ticket", "viewer")
    # ...the actions it hides are refused anyway.
    for method, path, body in (
        ("POST", "/api/scenarios/2/start", {"drill": True}),
        ("POST", f"/api/campaigns/{cid}/stop", None),
        ("POST", f"/api/campaigns/{cid}/quota", {"role": "nurse", "quota": 3}),
        ("POST", f"/api/campaigns/{cid}/extend", {}),
        ("POST", "/api/roster/check", None), ("GET", "/api/pins", None),
        ("GET", "/api/tokens", None), ("POST", "/api/tokens", {"name": "x", "role": "admin"}),
        ("DELETE", "/api/tokens/admin", None), ("GET", "/api/audit", None),
    ):  # fmt: skip
        await api.error(method, path, 403, "forbidden", "viewer", json=body)
    for method, path, body in (("POST", "/api/roster/check", None),
                               ("GET", "/api/tokens", None)):  # fmt: skip
        await api.error(method, path, 403, "forbidden", "operator", json=body)


async def test_an_admin_uploads_a_bad_roster_then_a_good_one(api: Api) -> None:
    await api.json("POST", "/api/roster", data=ROSTER.encode())
    version = (await api.json("GET", "/api/roster?limit=1"))["version"]
    bad = ROSTER + "N1;Twice;nurse;rea;0612345678;0\n"
    body = await api.error("POST", "/api/roster/check", 422, "roster_error", data=bad.encode())
    assert [p["line"] for p in body["problems"]] == [9] and "N1" in body["problems"][0]["reason"]
    assert (await api.json("GET", "/api/roster?limit=1"))["version"] == version
    good = ROSTER + "N3;Nurse Three;nurse;rea;0612345678;0\n"
    checked = await api.json("POST", "/api/roster/check", data=good.encode())
    assert (checked["count"], checked["added"]) == (8, 1)
    assert (await api.json("GET", "/api/roster?limit=1"))["version"] == version
    imported = await api.json("POST", "/api/roster", data=good.encode())
    assert imported["count"] == 8
    assert (await api.json("GET", "/api/roster?limit=1"))["version"] != version
    made = await api.json("POST", "/api/tokens", "admin", 201,
                          json={"name": "ecran", "role": "viewer"})  # fmt: skip
    assert "ecran" in [t["name"] for t in (await api.json("GET", "/api/tokens"))["items"]]
    await api.json("DELETE", "/api/tokens/ecran")
    assert made["token"] not in json.dumps(await api.json("GET", "/api/audit"))
    log = (await api.json("GET", "/api/audit?action=roster."))["items"]
    assert [e["details"]["count"] for e in log] == [8, 7], "checks are not audited: imports are"
