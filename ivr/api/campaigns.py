"""The API's campaign and scenario handlers: list, start (from a body or a prepared scenario),
estimate, report, stop, raise a quota, extend, people, events, HTML and CSV reports.

Handlers only translate HTTP into calls on `ivr.campaign` (store, report, ops); the route
table that serves them is `ivr.api.app.ROUTES`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from ivr.api import console, schemas
from ivr.api.guard import bearer_digest
from ivr.api.openapi import Call
from ivr.api.state import (
    audit_write,
    config_key,
    json_response,
    load_roster,
    page,
    redis_key,
    speaker_for,
    tickets_key,
)
from ivr.campaign import ops, store
from ivr.campaign import report as reports
from ivr.campaign.estimate import estimate
from ivr.campaign.scenarios import Scenario, ScenarioNotFound, load_scenarios
from ivr.campaign.spec import CampaignError, CampaignSpec, Group, select
from ivr.config import Config
from ivr.errors import TtsError
from ivr.staff.roster import Person

#: Characters of alert text spoken per second at the default 150 words per minute. The estimate
#: uses it instead of rendering the text: text-to-speech takes seconds, not for a request.
CHARS_PER_SECOND = 13.0


async def list_campaigns(request: web.Request, call: Call) -> web.StreamResponse:
    offset, limit = call.query["offset"], call.query["limit"]
    total, items = await reports.summaries(request.app[redis_key], offset=offset, limit=limit)
    return json_response({"total": total, "offset": offset, "limit": limit, "items": items})


def campaign_spec(body: dict[str, Any], config: Config) -> CampaignSpec:
    fields = {k: v for k, v in body.items() if k in schemas.CAMPAIGN_FIELDS}
    for key in ("roles", "units", "plan"):
        if key in fields:
            fields[key] = tuple(fields[key])
    if "groups" in fields:
        fields["groups"] = tuple(_group(g) for g in fields["groups"])
    fields.setdefault("ring_timeout", config.ring_timeout)
    spec = CampaignSpec(**fields)
    spec.check_sms(config.sms_ready)
    spec = spec.with_default_plan(config.sms_ready)
    spec.validate()
    return spec


async def people_for(app: web.Application) -> list[Person]:
    _, people = await load_roster(app)
    if not people:
        raise CampaignError("campaign: the roster is empty; import one first")
    return people


async def start_campaign(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    spec = campaign_spec(call.body, app[config_key])
    redis = app[redis_key]
    cid = await store.create(redis, spec, await people_for(app), sms=app[config_key].sms_ready)
    report = await reports.report(redis, cid)
    await audit_write(
        request, call, "campaign.start", cid, name=spec.name, drill=spec.drill,
        roles=list(spec.roles), units=list(spec.units), quotas=spec.quotas, total=report["total"],
    )  # fmt: skip
    return json_response(report, status=201, headers={"Location": f"/api/campaigns/{cid}"})


async def estimate_campaign(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    spec = campaign_spec(call.body, app[config_key])
    targets = select(await people_for(app), spec)
    return json_response(_estimate(spec, targets, call.body.get("lines"), app[config_key]))


def _estimate(
    spec: CampaignSpec, targets: list[Person], lines: int | None, config: Config
) -> dict[str, Any]:
    text = spec.messages.get("fr") or next(iter(spec.messages.values()))
    # From the text's length, not its rendering: no text-to-speech in the request path.
    seconds = len(text) / CHARS_PER_SECOND
    plan = estimate(
        Counter(p.role for p in targets),
        spec.quotas,
        lines=lines or config.max_channels,
        message_seconds=seconds,
        ring_timeout=spec.ring_timeout,
    )
    roles = {
        role: {"people": people, "quota": quota, "calls": calls, "minutes": minutes}
        for role, (people, quota, calls, minutes) in sorted(plan.roles.items())
    }
    warnings = list(plan.warnings)
    if not targets:
        warnings.insert(0, "nobody in the roster matches the targets")
    return {
        "targets": len(targets),
        "message_seconds": round(seconds, 1),
        "lines": plan.lines,
        "calls": plan.calls,
        "seconds_per_call": round(plan.seconds_per_call, 1),
        "total_minutes": round(plan.total_minutes, 1),
        "roles": roles,
        "warnings": warnings,
        "assumptions": "60% of calls answered, 60% of those available; retries not "
        f"counted; message length from its text at {CHARS_PER_SECOND:.0f} characters/s",
    }


async def campaign_report(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    return json_response(await reports.report(redis, cid))


async def stop_campaign(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    status = await store.stop(redis, cid)
    await audit_write(request, call, "campaign.stop", cid, status=status)
    return json_response({"id": cid, "status": status})


async def raise_quota(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    role, quota = call.body["role"], call.body["quota"]
    old = await ops.raise_quota(redis, cid, role, quota)
    await audit_write(request, call, "campaign.quota", cid, role=role, quota=quota, old=old)
    return json_response({"id": cid, "role": role, "quota": quota, "old": old})


async def campaign_people(request: web.Request, call: Call) -> web.StreamResponse:
    people = await reports.people(request.app[redis_key], request.match_info["id"])
    return page(people, call)


async def campaign_events(request: web.Request, call: Call) -> web.StreamResponse:
    after = call.query["after"]
    items = await reports.events(
        request.app[redis_key], request.match_info["id"], after=after, limit=call.query["limit"]
    )
    return json_response({"items": items, "next": items[-1]["id"] if items else after})


async def campaign_report_html(request: web.Request, call: Call) -> web.StreamResponse:
    html = await reports.report_html(request.app[redis_key], request.match_info["id"])
    return web.Response(
        text=html, content_type="text/html", charset="utf-8", headers=console.REPORT_CSP
    )


async def campaign_csv(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    return web.Response(
        text=await reports.attempts_csv(redis, cid),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{cid}.csv"'},
    )


def _group(body: dict[str, Any]) -> Group:
    return Group(
        body.get("name", ""),
        tuple(r.lower() for r in body.get("roles", ())),
        tuple(body.get("units", ())),
    )


async def extend_campaign(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    targets = _group(call.body) if call.body.get("roles") or call.body.get("units") else None
    if targets is None and call.body.get("name"):
        raise CampaignError("extend: a name alone adds nobody; give roles or units")
    done = await ops.extend(redis, cid, await people_for(request.app), targets=targets)
    await audit_write(request, call, "campaign.extend", cid, group=done.label, added=done.added)
    return json_response(
        {"id": cid, "added": done.added, "group": done.label, "groups_left": done.groups_left}
    )


async def extension_options(request: web.Request, call: Call) -> web.StreamResponse:
    """What a campaign can be extended to: its groups left (with how many people each would
    add), and the roster's roles and units to choose from."""
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    _, people = await load_roster(request.app)
    groups = []
    for group in await ops.groups_left(redis, cid):
        groups.append(_group_json(group, new=await ops.newcomers(redis, cid, people, group)))
    return json_response(
        {"groups": groups, "roles": _counts(people, "role"), "units": _counts(people, "unit")}
    )


def _scenarios(config: Config) -> list[Scenario]:
    # Read at each request: an edited file is in force at once (and a broken one says so).
    return load_scenarios(config.scenarios)


async def list_scenarios(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    _, people = await load_roster(app)
    items = []
    for scenario in _scenarios(app[config_key]):
        spec = scenario.spec
        items.append(
            {
                **_scenario_json(scenario),
                "groups": [_group_json(g) for g in spec.groups],
                "targets": len(select(people, spec)),
            }
        )
    return json_response({"items": items})


def _scenario(request: web.Request) -> Scenario:
    key = request.match_info["key"]
    found = [s for s in _scenarios(request.app[config_key]) if s.key == key]
    if not found:
        raise ScenarioNotFound(f"no scenario has key {key!r}", scenario=key)
    return found[0]


def _scenario_json(scenario: Scenario) -> dict[str, Any]:
    spec = scenario.spec
    return {
        "key": scenario.key,
        "name": scenario.name,
        "labels": scenario.labels,
        "messages": spec.messages,
        "roles": list(spec.roles),
        "units": list(spec.units),
        "quotas": spec.quotas,
    }


def _group_json(group: Group, **counts: int) -> dict[str, Any]:
    return {"name": group.name, "roles": list(group.roles), "units": list(group.units), **counts}


def _counts(people: list[Person], attribute: str) -> dict[str, int]:
    return dict(sorted(Counter(getattr(p, attribute) for p in people).items()))


async def preview_scenario(request: web.Request, call: Call) -> web.StreamResponse:
    """Who a scenario would call, per role and unit, against its quotas, with the time to meet
    them; its message and groups. Starts nothing."""
    app = request.app
    scenario = _scenario(request)
    spec = scenario.spec
    _, people = await load_roster(app)
    targets = select(people, spec)
    chosen = {p.id for p in targets}
    groups = []
    for group in spec.groups:
        members = select(people, group)
        new = sum(1 for p in members if p.id not in chosen)
        groups.append(_group_json(group, people=len(members), new=new))
        chosen |= {p.id for p in members}
    return json_response(
        {
            **_scenario_json(scenario),
            "targets": len(targets),
            "on_call": sum(1 for p in targets if p.on_call),
            "by_role": _counts(targets, "role"),
            "by_unit": _counts(targets, "unit"),
            "groups": groups,
            "estimate": _estimate(spec, targets, None, app[config_key]),
        }
    )


async def scenario_audio(request: web.Request, call: Call) -> web.StreamResponse:
    """The scenario's message as staff will hear it: rendered by the service's text-to-speech
    (cached, like the calls' own renders)."""
    app = request.app
    spec = _scenario(request).spec
    language = call.query["language"] or app[config_key].language
    # Staff without a message in their language hear the French one, as on a call.
    if language not in spec.messages:
        language = "fr" if "fr" in spec.messages else next(iter(spec.messages))
    try:
        path = await speaker_for(app).render(spec.messages[language], language)
        audio = path.read_bytes()
    except OSError as exc:  # the audio directory not writable, a file gone meanwhile
        raise TtsError(f"the message cannot be rendered here: {exc}") from exc
    return web.Response(
        body=audio,
        content_type="audio/wav",
        headers={"Content-Language": language},
    )


async def start_scenario(request: web.Request, call: Call) -> web.StreamResponse:
    app = request.app
    scenario, drill = _scenario(request), bool(call.body.get("drill", False))
    key = scenario.key
    spec = scenario.campaign(drill=drill)
    redis = app[redis_key]
    cid = await store.create(redis, spec, await people_for(app), sms=app[config_key].sms_ready)
    report = await reports.report(redis, cid)
    await audit_write(
        request, call, "campaign.start", cid, scenario=key, name=spec.name, drill=drill,
        total=report["total"],
    )  # fmt: skip
    return json_response(report, status=201, headers={"Location": f"/api/campaigns/{cid}"})


async def stream_ticket(request: web.Request, call: Call) -> web.StreamResponse:
    cid, redis = request.match_info["id"], request.app[redis_key]
    await store.require(redis, cid)
    tickets = request.app[tickets_key]
    ticket = await tickets.issue(bearer_digest(request), cid)
    return json_response({"ticket": ticket, "expires_in": tickets.seconds})
