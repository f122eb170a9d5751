"""The console API through aiohttp's test client, on a real private redis-server (no Asterisk).

Every route, every auth failure (no token, wrong token, revoked token, insufficient role), bad
input of each kind, the audit log, the metrics text and the OpenAPI document's sync with the
routes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr import keys
from ivr.access.tokens import Role, TokenStore
from ivr.api.app import ROUTES, make_app
from ivr.campaign.scheduler import Scheduler
from ivr.config import Config, load_config
from ivr.db import connect
from ivr.dialer.alerter import Alerter
from ivr.errors import ConfigError
from ivr.keys import campaign_key
from ivr.sandbox.redisserver import RedisServer
from tests.conftest import unavailable

ROSTER = (
    "id;name;role;unit;phone;on_call;backup\n"
    "N1;Nurse One;nurse;urgences;0611111111;1;\n"
    "N2;Nurse Two;nurse;urgences;0622222222;0;\n"
    "N3;Nurse Three;nurse;rea;0633333333;0;N1\n"
    "D1;Doctor One;doctor;urgences;0644444444;0;\n"
    "D2;Doctor Two;doctor;rea;0655555555;0;\n"
)
MESSAGE = {"messages": {"fr": "Plan blanc déclenché. Rejoignez votre service."}}


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    db: aioredis.Redis

    async def call(
        self, method: str, path: str, role: str | None = "admin", **kwargs: Any
    ) -> ClientResponse:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def json(
        self, method: str, path: str, role: str | None = "admin", status: int = 200, **kw: Any
    ) -> Any:
        response = await self.call(method, path, role, **kw)
        body = await response.json()
        assert response.status == status, body
        return body

    async def error(
        self, method: str, path: str, status: int, code: str, role: str | None = "admin", **kw: Any
    ) -> dict[str, Any]:
        response = await self.call(method, path, role, **kw)
        assert response.content_type == "application/json"
        body: dict[str, Any] = await response.json()
        assert (response.status, body.get("error")) == (status, code), body
        assert isinstance(body["message"], str) and body["message"]
        return body

    async def roster(self) -> None:
        await self.json("POST", "/api/roster", data=ROSTER.encode())

    async def start(self, **fields: Any) -> str:
        body = await self.json(
            "POST", "/api/campaigns", "operator", 201, json={**MESSAGE, **fields}
        )
        return str(body["campaign"])

    async def answer(self, cid: str, outcome: str = "available") -> str:
        """One attempt through the real scheduler scripts, as a worker would record it; the id
        of the person called."""
        scheduler = Scheduler(self.db)
        now = int(time.time() * 1000) + 1000
        claim = await scheduler.claim(cid, now, lease_ms=30_000, worker="w", asterisk="a")
        assert claim is not None
        await scheduler.finish(
            cid, claim.pid, claim.attempt, outcome, now, worker="w", number=claim.number, detail=""
        )
        return claim.pid


async def start_api(db: aioredis.Redis, config: Config, alerter: Alerter | None = None) -> Api:
    store = TokenStore(db)
    keys = {role.value: await store.create(role.value, role) for role in Role}
    keys["revoked"] = await store.create("gone", Role.admin)
    await store.revoke("gone")
    client: TestClient[Any, Any] = TestClient(
        TestServer(
            make_app(
                config,
                db,
                link=alerter.link if alerter else None,
                speaker=alerter.speaker if alerter else None,
            )
        )
    )
    await client.start_server()
    return Api(client, keys, db)


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """One redis-server for this module's many tests, emptied before each."""
    with redis.Redis.from_url(shared_redis.url) as client:
        client.flushall()
    return shared_redis


@pytest.fixture
async def api(db: aioredis.Redis) -> AsyncIterator[Api]:
    made = await start_api(db, Config())
    yield made
    await made.client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def concrete(path: str, cid: str = "1") -> str:
    return path.replace("{id}", cid).replace("{key}", "1").replace("{name}", "someone")


# -- health, errors of aiohttp itself -----------------------------------------------------


async def test_health_needs_no_token_and_says_ami_unconfigured(api: Api) -> None:
    body = await api.json("GET", "/api/health", role=None)
    checks = {c["name"]: c["state"] for c in body.pop("checks")}
    # No worker has ever run against this Redis: nobody would place the calls. This module's
    # Redis has no append-only file (a warning).
    assert body == {"status": "critical", "redis": "up", "ami": "unconfigured", "version": "0.1.0"}
    assert checks == {"redis": "warning", "workers": "critical", "ami": "ok"}


async def test_service_answers_while_asterisk_is_unreachable(db: aioredis.Redis) -> None:
    config = Config(ami_user="ivr", ami_secret="x", ami_port=free_port(), ami_timeout=1)
    made = await start_api(db, config)
    try:
        assert (await made.json("GET", "/api/health", role=None))["ami"] == "down"
        assert (await made.json("GET", "/api/roster", "viewer"))["total"] == 0
        text = await (await made.call("GET", "/metrics", role=None)).text()
        assert 'ivr_ami_link{state="down"} 1' in text
    finally:
        await made.client.close()


async def test_redis_down_is_503_not_500(tmp_path: Path) -> None:
    db = connect(f"redis://127.0.0.1:{free_port()}/0")
    app = make_app(Config(), db)
    async with TestClient(TestServer(app)) as client:
        health = await client.get("/api/health")
        body = await health.json()
        assert (health.status, body["redis"], body["status"]) == (200, "down", "critical")
        token = "ivr_" + "a" * 43  # shaped like a token, so it is looked up
        response = await client.get("/api/roster", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 503
        assert (await response.json())["error"] == "redis_unavailable"
        metrics = await (await client.get("/metrics")).text()
        assert "ivr_redis_up 0" in metrics
    await db.aclose()


async def test_unknown_path_and_wrong_method_are_json(api: Api) -> None:
    await api.error("GET", "/api/nope", 404, "not_found")
    body = await api.error("DELETE", "/api/roster", 405, "method_not_allowed")
    assert body["message"]


# -- auth ---------------------------------------------------------------------------------

PROTECTED = [r for r in ROUTES if r.role is not None]


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
async def test_auth_failures(api: Api, route: Any) -> None:
    path = concrete(route.path)
    response = await api.call(route.method, path, role=None)
    assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert (await response.json())["error"] == "missing_token"
    for header in ("Bearer ivr_wrong", "Bearer", "Basic dXNlcjpwYXNz", "ivr_x"):
        await api.error(
            route.method, path, 401, "invalid_token", role=None, headers={"Authorization": header}
        )
    await api.error(route.method, path, 401, "revoked_token", role="revoked")
    weaker = [r for r in Role if not r.allows(route.role)]
    for role in weaker:
        body = await api.error(route.method, path, 403, "forbidden", role=role.value)
        assert route.role.value in body["message"]


async def test_roles_needed(api: Api) -> None:
    needed = {(r.method, r.path): r.role for r in ROUTES}
    assert needed[("POST", "/api/roster")] is Role.admin
    assert needed[("GET", "/api/audit")] is Role.admin
    assert needed[("POST", "/api/campaigns")] is Role.operator
    assert needed[("POST", "/api/campaigns/{id}/stop")] is Role.operator
    assert needed[("GET", "/api/campaigns/{id}")] is Role.viewer
    assert needed[("GET", "/metrics")] is None and needed[("GET", "/api/health")] is None


# -- roster -------------------------------------------------------------------------------


async def test_roster_import_list_export(api: Api) -> None:
    imported = await api.json("POST", "/api/roster", data=ROSTER.encode())
    assert imported["count"] == 5 and imported["version"]
    page = await api.json("GET", "/api/roster?offset=1&limit=2", "viewer")
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    assert [p["id"] for p in page["items"]] == ["D2", "N1"], "ordered by id"
    assert page["version"] == imported["version"]
    n1 = page["items"][1]
    assert (n1["role"], n1["phones"], n1["on_call"], n1["backup"]) == (
        "nurse",
        ["0611111111"],
        True,
        None,
    )
    response = await api.call("GET", "/api/roster.csv", "viewer")
    assert response.status == 200 and response.content_type == "text/csv"
    text = await response.text()
    assert text.splitlines()[0].startswith("id;name;role") and "Nurse Three" in text
    again = await api.json("POST", "/api/roster", data=text.encode())
    assert again["count"] == 5, "the export imports back"


async def test_bad_roster_is_422_with_lines_and_changes_nothing(api: Api) -> None:
    await api.roster()
    bad = ROSTER + "X1;Bad;nurse;urgences;06&11;0;\nN1;Dup;nurse;urgences;0600000000;0;\n"
    body = await api.error("POST", "/api/roster", 422, "roster_error", data=bad.encode())
    assert [p["line"] for p in body["problems"]] == [7, 8]
    assert (await api.json("GET", "/api/roster", "viewer"))["total"] == 5
    for data in (b"", b"\xff\xfe\x00garbage", b"id;name\n"):
        await api.error("POST", "/api/roster", 422, "roster_error", data=data)


# -- campaigns ----------------------------------------------------------------------------


async def test_start_list_report_stop(api: Api) -> None:
    await api.roster()
    response = await api.call(
        "POST", "/api/campaigns", "operator", json={**MESSAGE, "roles": ["nurse"], "drill": True,
                                                    "quotas": {"nurse": 2}, "name": "exercice"}
    )  # fmt: skip
    report = await response.json()
    assert response.status == 201, report
    cid = report["campaign"]
    assert response.headers["Location"] == f"/api/campaigns/{cid}"
    assert (report["total"], report["drill"], report["name"]) == (3, True, "exercice")
    assert report["by_role"]["nurse"]["quota"] == 2

    second = await api.start(units=["rea"])
    listed = await api.json("GET", "/api/campaigns", "viewer")
    assert listed["total"] == 2
    assert [c["id"] for c in listed["items"]] == [second, cid], "newest first"
    assert listed["items"][1]["drill"] is True and listed["items"][0]["total"] == 2
    page = await api.json("GET", "/api/campaigns?offset=1&limit=1", "viewer")
    assert [c["id"] for c in page["items"]] == [cid]

    got = await api.json("GET", f"/api/campaigns/{cid}", "viewer")
    assert got["campaign"] == cid and got["status"] == "running"
    stopped = await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    assert stopped == {"id": cid, "status": "stopped"}
    again = await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    assert again["status"] == "stopped"
    assert (await api.json("GET", f"/api/campaigns/{cid}", "viewer"))["status"] == "stopped"


async def test_spec_fields_reach_the_campaign(api: Api) -> None:
    await api.roster()
    fields = {
        "messages": {"fr": "Alerte", "en": "Alert"},
        "ring_timeout": 20,
        "attempts": 2,
        "retry_delay": 60,
        "escalate": False,
        "amd": False,
        "ask_eta": False,
        "callback_number": "01 23 45 67 89",
    }
    cid = await api.start(**fields)
    spec = json.loads(str(await api.db.hget(campaign_key(cid), "spec")))
    for key, value in fields.items():
        assert spec[key] == value, key
    default = await api.start()
    assert json.loads(str(await api.db.hget(campaign_key(default), "spec")))["ring_timeout"] == 30


async def test_integers_written_with_a_zero_fraction_are_integers(api: Api) -> None:
    # JSON Schema 2020-12: 20.0 is an integer; the campaign gets 20, not 20.0.
    await api.roster()
    raw = b'{"messages": {"fr": "Alerte"}, "ring_timeout": 20.0, "attempts": 2e0}'
    body = await api.json("POST", "/api/campaigns", "operator", 201, data=raw,
                          headers={"Content-Type": "application/json"})  # fmt: skip
    spec = json.loads(str(await api.db.hget(campaign_key(body["campaign"]), "spec")))
    assert (spec["ring_timeout"], spec["attempts"]) == (20, 2)
    assert isinstance(spec["ring_timeout"], int) and isinstance(spec["attempts"], int)
    huge = b'{"messages": {"fr": "Alerte"}, "attempts": 1e400}'  # a float: infinity
    got = await api.error("POST", "/api/campaigns", 422, "invalid_input", "operator", data=huge,
                          headers={"Content-Type": "application/json"})  # fmt: skip
    assert [p["field"] for p in got["problems"]] == ["attempts"], got


async def test_people_and_events(api: Api) -> None:
    await api.roster()
    cid = await api.start(roles=["doctor"])
    pid = await api.answer(cid)
    people = await api.json("GET", f"/api/campaigns/{cid}/people", "viewer")
    assert people["total"] == 2
    by_id = {p["id"]: p for p in people["items"]}
    assert by_id[pid]["state"] == "done" and by_id[pid]["outcome"] == "available"
    assert by_id[pid]["attempts"] == 1 and by_id[pid]["finished_at"] is not None
    other = next(p for p in people["items"] if p["id"] != pid)
    assert (other["state"], other["outcome"], other["attempts"]) == ("queued", None, 0)
    assert "phones" not in other

    first = await api.json("GET", f"/api/campaigns/{cid}/events?limit=2", "viewer")
    assert [e["type"] for e in first["items"]] == ["started", "attempt"]
    rest = await api.json("GET", f"/api/campaigns/{cid}/events?after={first['next']}", "viewer")
    assert [e["type"] for e in rest["items"]] == ["final"]
    assert rest["items"][0]["pid"] == pid
    empty = await api.json("GET", f"/api/campaigns/{cid}/events?after={rest['next']}", "viewer")
    assert empty == {"items": [], "next": rest["next"]}, "poll again from the same cursor"


async def test_raise_quota(api: Api) -> None:
    await api.roster()
    cid = await api.start(quotas={"nurse": 1})
    path = f"/api/campaigns/{cid}/quota"
    raised = await api.json("POST", path, "operator", json={"role": "nurse", "quota": 3})
    assert raised == {"id": cid, "role": "nurse", "quota": 3, "old": 1}
    assert await api.db.hget(campaign_key(cid, "quota"), "nurse") == "3"
    newest: Any = await api.db.xrevrange(campaign_key(cid, "events"), count=1)
    last = newest[0][1]
    assert {"type": "quota", "role": "nurse", "quota": "3", "old": "1"}.items() <= last.items()
    report = await api.json("GET", f"/api/campaigns/{cid}", "viewer")
    assert report["by_role"]["nurse"]["quota"] == 3

    body = await api.error("POST", path, 422, "campaign_error", json={"role": "nurse", "quota": 2})
    assert "raise it above" in body["message"]
    await api.error("POST", path, 422, "campaign_error", json={"role": "doctor", "quota": 5})
    await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    await api.error("POST", path, 409, "campaign_not_running", json={"role": "nurse", "quota": 9})


async def test_extend_to_the_next_groups_then_to_given_targets(api: Api) -> None:
    await api.roster()
    groups = [{"name": "réa", "units": ["rea"]}, {"name": "médecins", "roles": ["doctor"]}]
    cid = await api.start(roles=["nurse"], units=["urgences"], groups=groups)
    assert (await api.json("GET", f"/api/campaigns/{cid}", "viewer"))["total"] == 2
    path = f"/api/campaigns/{cid}/extend"
    first = await api.json("POST", path, "operator", json={})
    # The rea unit: N3 and D2 (N3's backup N1 is already called).
    assert first == {"id": cid, "added": 2, "group": "réa", "groups_left": 1}
    second = await api.json("POST", path, "operator", json={})
    assert second == {"id": cid, "added": 1, "group": "médecins", "groups_left": 0}, "D2 once"
    body = await api.error("POST", path, 422, "campaign_error", "operator", json={})
    assert "no group left" in body["message"]
    people = await api.json("GET", f"/api/campaigns/{cid}/people?limit=50", "viewer")
    assert sorted(p["id"] for p in people["items"]) == ["D1", "D2", "N1", "N2", "N3"]
    assert [p["state"] for p in people["items"]] == ["queued"] * 5
    report = await api.json("GET", f"/api/campaigns/{cid}", "viewer")
    assert (report["total"], report["pending"]) == (5, 5)
    # Given targets: nobody new; roles or units are needed.
    again = await api.json("POST", path, "operator", json={"roles": ["nurse", "doctor"]})
    assert again["added"] == 0 and again["groups_left"] == 0
    await api.error("POST", path, 422, "campaign_error", "operator", json={"name": "x"})
    await api.error("POST", path, 422, "invalid_input", "operator", json={"roles": ["Bad role"]})
    await api.error("POST", path, 403, "forbidden", "viewer", json={})
    events = await api.json("GET", f"/api/campaigns/{cid}/events?limit=100", "viewer")
    extended = [e for e in events["items"] if e["type"] == "extended"]
    assert [(e["group"], e["added"]) for e in extended] == [("réa", "2"), ("médecins", "1"),
                                                            ("nurse, doctor", "0")]  # fmt: skip
    await api.json("POST", f"/api/campaigns/{cid}/stop", "operator")
    await api.error("POST", path, 409, "campaign_not_running", "operator", json={})


async def test_an_ended_campaign_extended_runs_again(api: Api) -> None:
    await api.roster()
    cid = await api.start(roles=["doctor"], units=["urgences"], attempts=1,
                          groups=[{"roles": ["nurse"]}])  # fmt: skip
    await api.answer(cid)
    assert (await api.json("GET", f"/api/campaigns/{cid}", "viewer"))["status"] == "done"
    done = await api.json("POST", f"/api/campaigns/{cid}/extend", "operator", json={})
    assert done["added"] == 3 and done["group"] == "group 1"
    report = await api.json("GET", f"/api/campaigns/{cid}", "viewer")
    assert (report["status"], report["pending"], report["available"]) == ("running", 3, 1)
    listed = await api.json("GET", "/api/campaigns", "viewer")
    assert listed["items"][0]["status"] == "running"


async def test_scenarios_listed_and_started(api: Api) -> None:
    await api.roster()
    listed = await api.json("GET", "/api/scenarios", "viewer")
    by_key = {s["key"]: s for s in listed["items"]}
    assert sorted(by_key) == ["1", "2", "3"]
    assert by_key["1"]["labels"]["fr"] == "afflux massif de victimes"
    assert by_key["1"]["groups"] == [{"name": "sages-femmes", "roles": ["midwife"], "units": []}]
    assert by_key["2"]["targets"] == 5 and by_key["2"]["quotas"] == {"nurse": 15}
    report = await api.json("POST", "/api/scenarios/2/start", "operator", 201, json={"drill": True})
    assert report["drill"] is True and report["total"] == 5
    assert report["name"] == "plan blanc numerique - cyberattaque"
    await api.error("POST", "/api/scenarios/7/start", 404, "scenario_not_found", "operator",
                    json={})  # fmt: skip
    await api.error("POST", "/api/scenarios/2/start", 403, "forbidden", "viewer", json={})
    [entry] = [e for e in (await api.json("GET", "/api/audit"))["items"]
               if e["action"] == "campaign.start"]  # fmt: skip
    assert entry["details"]["scenario"] == "2" and entry["who"] == "operator"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/stop", None),
        ("POST", "/quota", {"role": "nurse", "quota": 2}),
        ("POST", "/extend", {}),
        ("GET", "/people", None),
        ("GET", "/events", None),
    ],
)
async def test_unknown_campaign_is_404(
    api: Api, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    for cid in ("999", "abc", "1e3", "٣", "-1", "9" * 40):
        await api.error(
            method, f"/api/campaigns/{cid}{suffix}", 404, "campaign_not_found", json=body
        )


async def test_estimate_starts_nothing(api: Api) -> None:
    await api.roster()
    text = "x" * 130  # 10 s at 13 characters per second
    body = await api.json(
        "POST",
        "/api/campaigns/estimate",
        "viewer",
        json={"messages": {"fr": text}, "quotas": {"nurse": 1}, "lines": 2},
    )
    assert (body["targets"], body["lines"], body["message_seconds"]) == (5, 2, 10.0)
    assert body["roles"]["nurse"]["quota"] == 1 and body["roles"]["doctor"]["quota"] is None
    assert body["total_minutes"] > 0
    assert await api.db.zcard(keys.campaigns_key) == 0
    nobody = await api.json(
        "POST", "/api/campaigns/estimate", "viewer", json={**MESSAGE, "roles": ["pharmacist"]}
    )
    assert nobody["targets"] == 0 and "nobody" in nobody["warnings"][0]


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"messages": {"fr": "x"}', b"[" * 60_000, b"\xff\xfe",
     b'{"messages": {"fr": "x"}, "attempts": NaN}', b'{"messages": {"fr": "x"}, "a": Infinity}'],
)  # fmt: skip
async def test_malformed_json_is_422(api: Api, raw: bytes) -> None:
    await api.roster()
    for path in ("/api/campaigns", "/api/campaigns/estimate"):
        await api.error(
            "POST", path, 422, "invalid_json", headers={"Content-Type": "application/json"},
            data=raw,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ("x", "body"),
        (None, "body"),
        ({}, "messages"),
        ({"messages": "Alerte"}, "messages"),
        ({"messages": {}}, "messages"),
        ({"messages": {"de": "Alarm"}}, "messages.de"),
        ({"messages": {"fr": ""}}, "messages.fr"),
        ({"messages": {"fr": 5}}, "messages.fr"),
        ({"messages": {"fr": "x" * 5001}}, "messages.fr"),
        ({"messages": {"fr": "a\x00b"}}, "messages.fr"),
        ({"messages": {"fr": "half a pair \ud800"}}, "messages.fr"),
        ({**MESSAGE, "\udc00": 1}, "\udc00"),
        ({**MESSAGE, "attempts": "3"}, "attempts"),
        ({**MESSAGE, "attempts": 3.5}, "attempts"),
        ({**MESSAGE, "attempts": True}, "attempts"),
        ({**MESSAGE, "attempts": 0}, "attempts"),
        ({**MESSAGE, "attempts": 10**30}, "attempts"),
        ({**MESSAGE, "drill": "yes"}, "drill"),
        ({**MESSAGE, "ring_timeout": 4}, "ring_timeout"),
        ({**MESSAGE, "retry_delay": -1}, "retry_delay"),
        ({**MESSAGE, "roles": "nurse"}, "roles"),
        ({**MESSAGE, "roles": ["Nurse!"]}, "roles[0]"),
        ({**MESSAGE, "roles": [1]}, "roles[0]"),
        ({**MESSAGE, "roles": ["nurse"] * 101}, "roles"),
        ({**MESSAGE, "units": [""]}, "units[0]"),
        ({**MESSAGE, "quotas": {"nurse": 0}}, "quotas.nurse"),
        ({**MESSAGE, "quotas": {"nurse": "2"}}, "quotas.nurse"),
        ({**MESSAGE, "quotas": {"bad role": 2}}, "quotas.bad role"),
        ({**MESSAGE, "quotas": ["nurse"]}, "quotas"),
        ({**MESSAGE, "name": "a\nb"}, "name"),
        ({**MESSAGE, "callback_number": "06&11"}, "callback_number"),
        ({**MESSAGE, "quota": {"nurse": 1}}, "quota"),
        ({**MESSAGE, "recordings": {"fr": "/etc/passwd"}}, "recordings"),
    ],
)
async def test_wrong_types_and_values_are_422(api: Api, body: Any, field: str) -> None:
    await api.roster()
    raw = json.dumps(body).encode()  # not json=: aiohttp sends no body at all for None
    got = await api.error(
        "POST", "/api/campaigns", 422, "invalid_input", "operator", data=raw,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert field in [p["field"] for p in got["problems"]], got
    assert await api.db.zcard(keys.campaigns_key) == 0


async def test_service_checks_beyond_the_schema_are_422(api: Api) -> None:
    await api.error("POST", "/api/campaigns", 422, "campaign_error", "operator", json=MESSAGE)
    await api.roster()
    blank = {"messages": {"fr": "   "}}
    await api.error("POST", "/api/campaigns", 422, "campaign_error", "operator", json=blank)
    nobody = {**MESSAGE, "roles": ["pharmacist"]}
    body = await api.error("POST", "/api/campaigns", 422, "campaign_error", "operator", json=nobody)
    assert "nobody" in body["message"]
    plus = {**MESSAGE, "callback_number": "++33"}
    await api.error("POST", "/api/campaigns", 422, "invalid_number", "operator", json=plus)
    bad_quota = {"role": "nurse", "quota": "3"}
    await api.error("POST", "/api/campaigns/1/quota", 422, "invalid_input", "operator",
                    json=bad_quota)  # fmt: skip


async def test_large_bodies_are_413(api: Api) -> None:
    big = {"messages": {"fr": "x"}, "name": "y" * 70_000}
    await api.error("POST", "/api/campaigns", 413, "payload_too_large", "operator", json=big)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=abc", "limit=", "offset=-1", "offset=1.5", "limit=1e3",
     "offset=99999999999999999999999"],
)  # fmt: skip
async def test_bad_paging_is_422(api: Api, query: str) -> None:
    for path in ("/api/roster", "/api/campaigns"):
        await api.error("GET", f"{path}?{query}", 422, "invalid_input", "viewer")


@pytest.mark.parametrize("cursor", ["x", "1", "1-", "-1-0", "1-2-3", "9" * 25 + "-0", "$"])
async def test_bad_cursors_are_422(api: Api, cursor: str) -> None:
    await api.roster()
    cid = await api.start()
    await api.error("GET", f"/api/campaigns/{cid}/events?after={cursor}", 422, "invalid_input")
    await api.error("GET", f"/api/audit?before={cursor}", 422, "invalid_input")


# -- audit --------------------------------------------------------------------------------


async def test_audit_before_the_first_possible_entry_is_empty(api: Api) -> None:
    # Found by the fuzz: Redis refuses the range "(0-0"; nothing is older than it anyway.
    for cursor in ("0-0", "00-000"):
        assert await api.json("GET", f"/api/audit?before={cursor}") == {"items": [], "next": None}


async def test_every_write_is_audited(api: Api) -> None:
    await api.roster()
    cid = await api.start(quotas={"nurse": 1})
    await api.json("POST", f"/api/campaigns/{cid}/quota", "operator",
                   json={"role": "nurse", "quota": 2})  # fmt: skip
    await api.json("POST", f"/api/campaigns/{cid}/stop", "admin")
    # Reads and refused writes leave no entry.
    await api.json("GET", "/api/campaigns", "viewer")
    await api.json("POST", "/api/campaigns/estimate", "viewer", json=MESSAGE)
    await api.error("POST", "/api/campaigns", 403, "forbidden", "viewer", json=MESSAGE)

    log = await api.json("GET", "/api/audit")
    entries = log["items"]
    assert [(e["action"], e["who"], e["role"]) for e in entries] == [
        ("campaign.stop", "admin", "admin"),
        ("campaign.quota", "operator", "operator"),
        ("campaign.start", "operator", "operator"),
        ("roster.import", "admin", "admin"),
    ], "newest first, with the token's name and role"
    assert entries[1]["target"] == cid and entries[1]["details"] == {
        "role": "nurse", "quota": 2, "old": 1,
    }  # fmt: skip
    assert entries[3]["details"]["count"] == 5
    assert all(abs(e["at"] - time.time()) < 60 for e in entries)
    assert log["next"] is None

    first = await api.json("GET", "/api/audit?limit=3")
    assert len(first["items"]) == 3 and first["next"] == first["items"][-1]["id"]
    rest = await api.json("GET", f"/api/audit?before={first['next']}&limit=3")
    assert [e["action"] for e in rest["items"]] == ["roster.import"]


# -- metrics ------------------------------------------------------------------------------

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
_SAMPLE = re.compile(
    rf"[a-zA-Z_:][a-zA-Z0-9_:]*(\{{{_LABEL}(,{_LABEL})*\}})? "
    r"(-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|NaN|[+-]Inf)"
)


def parse_metrics(text: str) -> dict[str, float]:
    """Every line a comment or `name{labels} value`; samples as {'name{labels}': value}, the
    labels sorted by name (their order means nothing in the format) and left escaped.

    Our own reader, not prometheus_client's: the test checks that library's writer, and should
    not take its reader as the judge (the OpenMetrics test uses the strict parser)."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    families: list[str] = []
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            if line.startswith("# TYPE "):
                name = line.split()[2]
                assert name not in families, f"{name} declared twice"
                families.append(name)
            continue
        assert _SAMPLE.fullmatch(line), line
        key, _, value = line.rpartition(" ")
        name, _, labels = key.partition("{")
        assert name == families[-1], f"{line}: not grouped under its TYPE"
        pairs = sorted(m.group(0) for m in re.finditer(_LABEL, labels))
        samples[f"{name}{{{','.join(pairs)}}}" if pairs else name] = float(value)
    return samples


async def test_metrics(db: aioredis.Redis, tmp_path: Path) -> None:
    # An Alerter that never connects: its link is down and its speech cache counts.
    alerter = Alerter(Config(ami_user="ivr", ami_secret="x", audio_dir=tmp_path))
    alerter.speaker.hits, alerter.speaker.misses = 7, 2
    made = await start_api(db, Config(), alerter=alerter)
    try:
        await made.roster()
        cid = await made.start(quotas={"nurse": 1})
        await db.hset(
            keys.workers_key,
            mapping={
                "host-default-0": json.dumps(
                    {
                        "asterisk": "default",
                        "capacity": 30,
                        "in_flight": 4,
                        "ami_up": True,
                        "seen": 1_900_000_000.5,
                    }
                ),  # fmt: skip
                'odd"name\\': json.dumps(
                    {"asterisk": "b", "capacity": 2, "in_flight": 0, "ami_up": False, "seen": 1.0}
                ),  # fmt: skip
                "garbage": "{not json",
            },
        )
        response = await made.call("GET", "/metrics", role=None)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        m = parse_metrics(await response.text())
    finally:
        await made.client.close()
    assert m['ivr_ami_link{state="down"}'] == 1 and m['ivr_ami_link{state="up"}'] == 0
    assert (m["ivr_tts_cache_hits_total"], m["ivr_tts_cache_misses_total"]) == (7, 2)
    assert m["ivr_redis_up"] == 1
    assert m[f'ivr_campaign_people{{campaign="{cid}"}}'] == 5
    assert m[f'ivr_campaign_queue_depth{{campaign="{cid}"}}'] == 5
    assert m[f'ivr_campaign_calls_in_flight{{campaign="{cid}"}}'] == 0
    assert m[f'ivr_campaign_people_final{{campaign="{cid}",outcome="available"}}'] == 0
    assert m[f'ivr_campaign_calls_total{{campaign="{cid}",outcome="busy"}}'] == 0
    worker = 'asterisk="default",worker="host-default-0"'
    assert m[f"ivr_worker_channels{{{worker}}}"] == 30
    assert m[f"ivr_worker_channels_in_use{{{worker}}}"] == 4
    assert m[f"ivr_worker_ami_up{{{worker}}}"] == 1
    assert m[f"ivr_worker_heartbeat_timestamp_seconds{{{worker}}}"] == 1_900_000_000.5
    assert m['ivr_worker_channels{asterisk="b",worker="odd\\"name\\\\"}'] == 2
    assert not any("garbage" in key for key in m)


async def test_metrics_without_alerter_or_campaigns(api: Api) -> None:
    m = parse_metrics(await (await api.call("GET", "/metrics", role=None)).text())
    assert m['ivr_ami_link{state="unconfigured"}'] == 1
    assert not any(k.startswith(("ivr_tts", "ivr_campaign", "ivr_worker")) for k in m)
    # The process's own, as supervision expects them.
    assert m["process_resident_memory_bytes"] > 0 and m["process_open_fds"] > 0
    assert m["process_cpu_seconds_total"] > 0 and 'python_gc_collections_total{generation="0"}' in m


async def test_metrics_in_openmetrics_when_asked(api: Api) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    await api.roster()
    cid = await api.start()
    response = await api.call(
        "GET", "/metrics", role=None, headers={"Accept": "application/openmetrics-text"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await response.text()
    assert text.endswith("# EOF\n")
    # The strict OpenMetrics parser: it refuses anything out of the format.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["ivr_campaign_calls"].type == "counter"
    calls = {s.labels["outcome"]: s for s in families["ivr_campaign_calls"].samples}
    assert calls["busy"].name == "ivr_campaign_calls_total" and calls["busy"].labels == {
        "campaign": cid, "outcome": "busy",
    }  # fmt: skip
    assert families["ivr_campaign_people"].samples[0].value == 5
    assert families["ivr_redis_up"].samples[0].value == 1


# -- OpenAPI ------------------------------------------------------------------------------


async def test_openapi_matches_the_routes(api: Api) -> None:
    doc = await api.json("GET", "/api/openapi.json", role=None)
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in api.client.app.router.routes()
        if route.resource is not None
    }
    assert served == documented
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            route = next(r for r in ROUTES if (r.method, r.path) == (method.upper(), path))
            security = [] if route.role is None else [{"token": []}]
            if route.ticket_in_query:  # EventSource cannot set headers
                security.append({"stream_ticket": []})
            assert op["security"] == security
            if route.role is not None:
                assert {"401", "403"} <= set(op["responses"])
            if "{id}" in path:
                assert "404" in op["responses"]
                assert op["parameters"][0] == {
                    "name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                }  # fmt: skip
    campaign = doc["paths"]["/api/campaigns"]["post"]["requestBody"]["content"]
    assert campaign["application/json"]["schema"]["required"] == ["messages"]


# -- configuration and `ivr serve` --------------------------------------------------------


def test_http_config_keys() -> None:
    config = load_config({}, require_ami_credentials=False)
    assert (config.http_host, config.http_port) == ("127.0.0.1", 8080)
    config = load_config(
        {"IVR_HTTP_HOST": "0.0.0.0", "IVR_HTTP_PORT": "9000"}, require_ami_credentials=False
    )
    assert (config.http_host, config.http_port) == ("0.0.0.0", 9000)
    assert load_config({"IVR_HTTP_HOST": "[::1]"}, require_ami_credentials=False).http_host == (
        "::1"
    )
    for key, raw in (("IVR_HTTP_PORT", "0"), ("IVR_HTTP_PORT", "http"),
                     ("IVR_HTTP_HOST", "a b"), ("IVR_HTTP_HOST", "host/x")):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            load_config({key: raw}, require_ami_credentials=False)
    example = (Path(__file__).parents[2] / "docs" / "ivr.env.example").read_text()
    assert "IVR_HTTP_HOST=127.0.0.1" in example and "IVR_HTTP_PORT=8080" in example


def _serve(redis_url: str, port: int, *options: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ.update(IVR_REDIS_URL=redis_url, IVR_HTTP_PORT=str(port), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "ivr", *options, "serve"],
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_ivr_serve_without_ami_credentials(redis_server: RedisServer) -> None:
    port = free_port()
    proc = _serve(redis_server.url, port)
    try:
        reader, writer = None, None
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert reader is not None and writer is not None, "ivr serve did not listen"
        writer.write(b"GET /api/health HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = (await reader.read()).decode()
        writer.close()
        assert answer.split("\r\n")[0].endswith(" 200 OK") and '"ami": "unconfigured"' in answer
        blocked = _serve(redis_server.url, port)  # same port: refused with one clear line
        _, err = blocked.communicate(timeout=30)
        assert blocked.returncode == 2 and "IVR_HTTP_PORT" in err, err
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving on http://127.0.0.1:{port}/" in err


async def test_ivr_serve_logs_json_lines_and_no_token(redis_server: RedisServer) -> None:
    import aiohttp

    port, token = free_port(), "tok-Hq3xV9-never-logged"
    ticket = "ivrt_Hq3xV9neverLoggedEitherXXXXXXXX"
    proc = _serve(redis_server.url, port, "-v", IVR_LOG_FORMAT="json")
    assert proc.stderr is not None
    try:
        # Its first words on stderr say it listens: as a JSON record too.
        first = json.loads(await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 30))
        assert first["logger"] == "ivr.status" and "serving on" in first["message"], first
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/api/health")).status == 200
            # The live stream takes a ticket in the query, and refuses a token there: neither
            # may reach the access log.
            assert (await http.get(f"/api/campaigns/1/stream?token={token}")).status == 401
            assert (await http.get(f"/api/campaigns/1/stream?ticket={ticket}")).status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    access = [r for r in records if r["logger"] == "aiohttp.access"]
    assert [r["message"].split('"')[1] for r in access] == [
        "GET /api/health", "GET /api/campaigns/1/stream", "GET /api/campaigns/1/stream",
    ]  # fmt: skip
    assert access[1]["message"].split('"')[2].split()[0] == "401"
    assert token not in err and ticket not in err
