"""The routes the console acts through (issue 18), over HTTP on a real aiohttp server and a real
redis-server: a scenario's preview and rendered message, what a campaign can be extended to,
a roster checked before it is imported, who has a PIN, API tokens created and revoked, the
audit log filtered, and requests from another site refused.

The role each route needs is checked for every route by `test_http.test_auth_failures`; the
OpenAPI document's sync with the routes by `test_http.test_openapi_matches_the_routes`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.access import audit
from ivr.access.pins import PinStore
from ivr.access.tokens import Role
from ivr.api.app import ROUTES
from ivr.api.state import own_speaker_key
from ivr.config import Config
from tests.api.test_http import Api, start_api
from tests.conftest import unavailable

#: The packaged scenarios (ivr/campaign/scenarios.toml) call nurses, anaesthetists, doctors and
#: orderlies in scenario 1, then midwives when extended.
ROSTER = (
    "id;name;role;unit;phone;on_call\n"
    "N1;Nurse One;nurse;urgences;0611111111;1\n"
    "N2;Nurse Two;nurse;rea;0622222222;0\n"
    "D1;Doctor One;doctor;urgences;0644444444;1\n"
    "A1;Anaes One;anaesthetist;bloc;0655555555;0\n"
    "M1;Midwife One;midwife;maternite;0666666666;0\n"
    "M2;Midwife Two;midwife;maternite;0677777777;0\n"
    "X1;Admin One;secretary;direction;0688888888;0\n"
)


@pytest.fixture
async def api(db: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    made = await start_api(db, Config(audio_dir=tmp_path / "sounds"))
    await made.json("POST", "/api/roster", data=ROSTER.encode())
    yield made
    await made.client.close()


def test_the_new_routes_need_their_roles() -> None:
    needed = {(r.method, r.path): r.role for r in ROUTES}
    assert needed[("GET", "/api/scenarios/{key}")] is Role.viewer
    assert needed[("GET", "/api/scenarios/{key}/audio")] is Role.viewer
    assert needed[("POST", "/api/scenarios/{key}/start")] is Role.operator
    assert needed[("GET", "/api/campaigns/{id}/extensions")] is Role.viewer
    assert needed[("POST", "/api/campaigns/{id}/stream-ticket")] is Role.viewer
    assert needed[("GET", "/api/roster/summary")] is Role.viewer
    assert needed[("GET", "/api/whoami")] is Role.viewer
    for admin_only in (("POST", "/api/roster/check"), ("GET", "/api/pins"),
                       ("GET", "/api/tokens"), ("POST", "/api/tokens"),
                       ("DELETE", "/api/tokens/{name}")):  # fmt: skip
        assert needed[admin_only] is Role.admin, admin_only


# -- start from a scenario ----------------------------------------------------------------


async def test_scenario_preview_says_who_would_be_called(api: Api) -> None:
    got = await api.json("GET", "/api/scenarios/1", "viewer")
    assert got["name"] == "plan blanc - afflux massif"
    assert got["targets"] == 4 and got["on_call"] == 2
    assert got["by_role"] == {"anaesthetist": 1, "doctor": 1, "nurse": 2}
    assert got["by_unit"] == {"bloc": 1, "rea": 1, "urgences": 2}
    assert got["quotas"] == {"nurse": 25, "anaesthetist": 4}
    assert got["messages"]["fr"].startswith("Alerte plan blanc.")
    assert got["groups"] == [
        {"name": "sages-femmes", "roles": ["midwife"], "units": [], "people": 2, "new": 2}
    ]
    estimate = got["estimate"]
    assert estimate["targets"] == 4 and estimate["total_minutes"] > 0
    assert set(estimate["roles"]) == {"anaesthetist", "doctor", "nurse"}
    # Quotas larger than the people there are: said, not hidden.
    assert any("nurse" in w for w in estimate["warnings"]), estimate["warnings"]
    # Everyone, for a scenario without roles.
    assert (await api.json("GET", "/api/scenarios/2", "viewer"))["targets"] == 7
    # A preview starts nothing.
    assert (await api.json("GET", "/api/campaigns", "viewer"))["total"] == 0
    await api.error("GET", "/api/scenarios/7", 404, "scenario_not_found", "viewer")


async def test_scenario_audio_is_the_rendered_message(api: Api, tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        unavailable("espeak-ng and sox are needed to render speech")
    response = await api.call("GET", "/api/scenarios/3/audio", "viewer")
    assert response.status == 200, await response.text()
    assert response.content_type == "audio/wav"
    assert response.headers["Content-Language"] == "fr"  # the installation's language
    assert response.headers["Cache-Control"] == "no-store"
    french = await response.read()
    assert french[:4] == b"RIFF" and french[8:12] == b"WAVE" and len(french) > 8000
    english = await api.call("GET", "/api/scenarios/3/audio?language=en", "viewer")
    assert english.headers["Content-Language"] == "en"
    assert (await english.read()) != french
    await api.error("GET", "/api/scenarios/3/audio?language=de", 422, "invalid_input", "viewer")
    # Where speech cannot be written: a clear 503, not a 500.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    api.client.app[own_speaker_key][0].audio_dir = blocked  # type: ignore[index]
    await api.error("GET", "/api/scenarios/1/audio", 503, "tts_error", "viewer")
    await api.error("GET", "/api/scenarios/8/audio", 404, "scenario_not_found", "viewer")


async def test_scenario_started_as_a_drill_is_audited_with_who(api: Api) -> None:
    report = await api.json("POST", "/api/scenarios/1/start", "operator", 201,
                            json={"drill": True})  # fmt: skip
    assert report["drill"] is True and report["total"] == 4
    for bad in ({"drill": "yes"}, {"drill": True, "quota": 3}, [], "x"):
        await api.error("POST", "/api/scenarios/1/start", 422, "invalid_input", "operator",
                        json=bad)  # fmt: skip
    log = await api.json("GET", "/api/audit?action=campaign.start")
    [entry] = log["items"]
    assert (entry["who"], entry["role"], entry["target"]) == (
        "operator", "operator", report["campaign"],
    )  # fmt: skip
    assert entry["details"]["scenario"] == "1" and entry["details"]["drill"] is True


# -- act on a running campaign ------------------------------------------------------------


async def test_extension_options_then_extend(api: Api) -> None:
    cid = str(
        (await api.json("POST", "/api/scenarios/1/start", "operator", 201, json={}))["campaign"]
    )
    options = await api.json("GET", f"/api/campaigns/{cid}/extensions", "viewer")
    assert options["groups"] == [
        {"name": "sages-femmes", "roles": ["midwife"], "units": [], "new": 2}
    ]
    assert options["roles"]["secretary"] == 1 and options["units"]["maternite"] == 2
    done = await api.json("POST", f"/api/campaigns/{cid}/extend", "operator", json={})
    assert (done["added"], done["group"], done["groups_left"]) == (2, "sages-femmes", 0)
    assert (await api.json("GET", f"/api/campaigns/{cid}/extensions"))["groups"] == []
    more = await api.json("POST", f"/api/campaigns/{cid}/extend", "operator",
                          json={"units": ["direction"]})  # fmt: skip
    assert more["added"] == 1
    quota = await api.json("POST", f"/api/campaigns/{cid}/quota", "operator",
                           json={"role": "nurse", "quota": 30})  # fmt: skip
    assert (quota["old"], quota["quota"]) == (25, 30)
    stopped = await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    assert stopped["status"] == "stopped"
    actions = [(e["action"], e["who"]) for e in (await api.json("GET", "/api/audit"))["items"]]
    assert actions[:5] == [
        ("campaign.stop", "operator"), ("campaign.quota", "operator"),
        ("campaign.extend", "operator"), ("campaign.extend", "operator"),
        ("campaign.start", "operator"),
    ]  # fmt: skip
    await api.error("GET", "/api/campaigns/99/extensions", 404, "campaign_not_found", "viewer")


async def test_roster_summary_counts_roles_and_units(api: Api) -> None:
    got = await api.json("GET", "/api/roster/summary", "viewer")
    assert got["total"] == 7 and got["version"]
    assert got["roles"] == {"anaesthetist": 1, "doctor": 1, "midwife": 2, "nurse": 2,
                            "secretary": 1}  # fmt: skip
    assert got["units"]["maternite"] == 2 and sum(got["units"].values()) == 7
    raw = json.dumps(got)
    # (Not "06": the version is a timestamp, and its seconds may be 06.)
    assert "0611111111" not in raw and "Nurse One" not in raw, "numbers, not people"


# -- roster and access --------------------------------------------------------------------


async def test_roster_check_changes_nothing(api: Api) -> None:
    before = await api.json("GET", "/api/roster?limit=1", "viewer")
    good = ROSTER.replace("X1;Admin One;secretary;direction;0688888888;0\n", "") + (
        "N9;Nurse Nine;nurse;rea;0699999999;0\n"
    )
    checked = await api.json("POST", "/api/roster/check", data=good.encode())
    assert checked["count"] == 7 and (checked["added"], checked["removed"]) == (1, 1)
    assert checked["roles"]["nurse"] == 3 and checked["units"]["rea"] == 2
    assert checked["current"] == {"version": before["version"], "count": 7}
    bad = good + "N1;Dup;nurse;urgences;0600000000;0\nB1;Bad;nurse;rea;06&11;0\n"
    body = await api.error("POST", "/api/roster/check", 422, "roster_error", data=bad.encode())
    assert [p["line"] for p in body["problems"]] == [9, 10]
    assert all(p["reason"] for p in body["problems"])
    await api.error("POST", "/api/roster/check", 422, "roster_error", data=b"")
    after = await api.json("GET", "/api/roster?limit=1", "viewer")
    assert after["version"] == before["version"] and after["total"] == 7
    assert not [e for e in (await api.json("GET", "/api/audit"))["items"]
                if e["action"] != "roster.import"], "a check is not a write"  # fmt: skip


async def test_pin_holders_never_show_a_pin(api: Api) -> None:
    pins = PinStore(api.db)
    await pins.set("D1", "482913")
    await pins.set("GONE", "771234")  # no longer in the roster
    got = await api.json("GET", "/api/pins")
    assert got["roster"] == 7
    assert got["items"] == [
        {"id": "D1", "name": "Doctor One", "role": "doctor", "unit": "urgences",
         "in_roster": True},
        {"id": "GONE", "name": None, "role": None, "unit": None, "in_roster": False},
    ]  # fmt: skip
    raw = json.dumps(got)
    assert "482913" not in raw and "771234" not in raw
    for digest in await api.db.hkeys("ivr:pins"):
        assert digest not in raw


async def test_tokens_created_shown_once_and_revoked(api: Api) -> None:
    made = await api.json("POST", "/api/tokens", "admin", 201,
                          json={"name": "salle-de-crise", "role": "operator"})  # fmt: skip
    token = made["token"]
    assert made["name"] == "salle-de-crise" and made["role"] == "operator"
    assert token.startswith("ivr_")
    listed = await api.json("GET", "/api/tokens")
    assert token not in json.dumps(listed)
    entry = next(t for t in listed["items"] if t["name"] == "salle-de-crise")
    assert entry["role"] == "operator" and entry["revoked_at"] is None
    # It works at once, with its role.
    api.tokens["new"] = token
    await api.json("GET", "/api/campaigns", "new")
    await api.error("GET", "/api/tokens", 403, "forbidden", "new")

    await api.error("POST", "/api/tokens", 422, "token_error",
                    json={"name": "salle-de-crise", "role": "viewer"})  # fmt: skip
    for bad in ({"name": "a b", "role": "viewer"}, {"name": "x", "role": "root"},
                {"name": "x"}, {"name": "x", "role": "viewer", "token": "ivr_chosen"},
                {"name": "", "role": "viewer"}):  # fmt: skip
        await api.error("POST", "/api/tokens", 422, "invalid_input", json=bad)

    assert await api.json("DELETE", "/api/tokens/salle-de-crise") == {
        "name": "salle-de-crise", "revoked": True,
    }  # fmt: skip
    await api.error("GET", "/api/campaigns", 401, "revoked_token", "new")
    await api.error("DELETE", "/api/tokens/salle-de-crise", 404, "token_not_found")
    await api.error("DELETE", "/api/tokens/nobody", 404, "token_not_found")
    log = (await api.json("GET", "/api/audit?action=token."))["items"]
    assert [(e["action"], e["who"], e["target"]) for e in log] == [
        ("token.revoke", "admin", "salle-de-crise"),
        ("token.create", "admin", "salle-de-crise"),
    ]
    assert log[1]["details"] == {"role": "operator"} and token not in json.dumps(log)


async def test_audit_filters(api: Api) -> None:
    first = await api.json("POST", "/api/scenarios/2/start", "operator", 201, json={})
    second = await api.json("POST", "/api/scenarios/3/start", "admin", 201, json={})
    for cid in (first["campaign"], second["campaign"]):
        await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")

    async def actions(query: str) -> list[tuple[str, str, str]]:
        items = (await api.json("GET", f"/api/audit?{query}"))["items"]
        return [(e["action"], e["who"], e["target"]) for e in items]

    one, two = str(first["campaign"]), str(second["campaign"])
    assert await actions("action=campaign.stop") == [
        ("campaign.stop", "operator", two), ("campaign.stop", "operator", one),
    ]  # fmt: skip
    assert [(a, w) for a, w, _ in await actions("who=admin")] == [
        ("campaign.start", "admin"), ("roster.import", "admin"),
    ]  # fmt: skip
    assert [a for a, _, _ in await actions(f"target={one}")] == ["campaign.stop", "campaign.start"]
    assert await actions(f"action=campaign.&who=operator&target={two}") == [
        ("campaign.stop", "operator", two)
    ]
    assert await actions("who=nobody") == []
    page = await api.json("GET", "/api/audit?action=campaign.&limit=2")
    assert len(page["items"]) == 2 and page["next"] == page["items"][-1]["id"]
    rest = await api.json("GET", f"/api/audit?action=campaign.&limit=2&before={page['next']}")
    assert [e["action"] for e in rest["items"]] == ["campaign.start", "campaign.start"]
    for bad in (
        "action=Campaign",
        "action=" + "a" * 41,
        "who=",
        "target=a%0Ab",
        "who=" + "x" * 201,
    ):
        await api.error("GET", f"/api/audit?{bad}", 422, "invalid_input")


async def test_audit_search_reads_a_bounded_part_of_the_log(db: aioredis.Redis) -> None:
    for n in range(10):
        await audit.record(db, "a" if n % 5 else "b", "campaign.start", target=str(n))
    # b wrote entries 0 and 5; reading 3 entries at a time: 9, 8, 7 match nothing.
    found, cursor = await audit.search(db, who="b", scan=3)
    assert found == [] and cursor is not None
    found, cursor = await audit.search(db, who="b", scan=3, before=cursor)
    assert [e["target"] for e in found] == ["5"]
    found, cursor = await audit.search(db, who="b", scan=10, before=cursor)
    assert [e["target"] for e in found] == ["0"] and cursor is None


# -- requests from another site -----------------------------------------------------------


async def test_a_cross_site_request_cannot_act(api: Api) -> None:
    """The page sends its token in the Authorization header, which a page of another site can
    neither read nor make a browser add: there is no cookie to ride on. So a cross-site form
    POST arrives without credentials, and nothing answers CORS."""
    evil = {"Origin": "https://evil.example", "Cookie": "session=whatever"}
    for method, path, kwargs in (
        ("POST", "/api/scenarios/1/start", {"data": "drill=true",
                                             "headers": {**evil, "Content-Type":
                                                         "application/x-www-form-urlencoded"}}),
        ("POST", "/api/tokens", {"json": {"name": "evil", "role": "admin"}, "headers": evil}),
        ("POST", "/api/campaigns/1/stop", {"headers": evil}),
    ):  # fmt: skip
        response = await api.call(method, path, role=None, **kwargs)
        assert response.status == 401, path
        assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await api.call("OPTIONS", "/api/tokens", role=None, headers={
        **evil, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    })  # fmt: skip
    assert preflight.status == 405 and "Access-Control-Allow-Origin" not in preflight.headers
    assert (await api.json("GET", "/api/campaigns"))["total"] == 0
    assert "evil" not in [t["name"] for t in (await api.json("GET", "/api/tokens"))["items"]]
