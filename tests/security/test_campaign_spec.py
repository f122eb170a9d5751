"""One validation of a campaign for every path that starts one, and a campaign that cannot run
ends `failed` instead of hanging.

The attack: `ivr campaign start --message "<100,000 characters>"` exited 0; the worker then
logged "text too long" every second for ever, everyone pending. Every path (CLI, API, scenario
file, trigger line) now shares `CampaignSpec.validate`; and a campaign whose calls cannot be
prepared anyway (sox gone from the server, say) ends `failed`, saying why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

import ivr.voice.tts
from ivr.api import schemas, validate
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.scenarios import load_scenarios
from ivr.campaign.spec import CampaignError, CampaignSpec
from ivr.cli.main import main
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.audio import call_request, load_audio
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.errors import ConfigError
from ivr.outcomes import Outcome
from ivr.sandbox.redisserver import RedisServer
from tests.api.test_http import start_api
from tests.campaigntools import person, wait_done

LONG = "Alerte. " * 12_500  # 100,000 characters
CAMPAIGN = validate.Checker(schemas.CAMPAIGN)


def test_cli_refuses_what_the_worker_cannot_say(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_server.url)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    for message in (LONG, "...", "a\x00b"):
        assert main(["campaign", "start", "--message", message]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ivr: error: campaign: the fr message"), err


async def test_api_refuses_the_same(db: Redis) -> None:
    api = await start_api(db, Config())
    try:
        await api.roster()
        too_long = {"messages": {"fr": LONG}}
        silent = {"messages": {"fr": "..."}}
        reversed_name = {"messages": {"fr": "Alerte."}, "name": "ok\u202e"}
        for body, status in ((too_long, 413), (silent, 422), (reversed_name, 422)):
            response = await api.call("POST", "/api/campaigns", "operator", json=body)
            assert response.status == status, await response.text()
        assert await api.db.zcard("ivr:campaigns") == 0
    finally:
        await api.client.close()


def test_scenario_file_refuses_the_same(tmp_path: Path) -> None:
    path = tmp_path / "scenarios.toml"
    path.write_text(f'[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "{"a" * 6000}"\n')
    with pytest.raises(ConfigError, match="6000 characters long"):
        load_scenarios(path)


@pytest.mark.integration
async def test_a_campaign_that_cannot_be_prepared_ends_failed(
    sandbox_config: Config, db: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server lost sox: no message can be rendered, whatever it says.
    monkeypatch.setattr(ivr.voice.tts, "SOX", "sox-is-gone")
    config = dataclasses.replace(sandbox_config, audio_dir=tmp_path, audio_dir_asterisk=tmp_path)
    people = [person(f"p{i}", "nurse", f"1011{i}") for i in range(5)]
    cid = await store.create(db, CampaignSpec(messages={"fr": "Alerte test."}), people)
    stop = asyncio.Event()
    async with Alerter(config) as alerter:
        worker = asyncio.create_task(
            DialerWorker(alerter, db, WorkerSettings("w", capacity=2)).run(stop)
        )
        try:
            report = await wait_done(db, cid, timeout=60)
        finally:
            stop.set()
            await worker
    assert report["status"] == "failed"
    assert "sox" in report["reason"] and report["pending"] == 0
    assert report["cancelled"] == 5 and report["attempts"] == 0


# -- every spec that is accepted renders and dials ------------------------------------------

#: Realistic words (French and English letters, digits, punctuation), and text no voice says.
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèàçôÉ0123456789 .,;:!?'-", max_size=80)
ODD = st.sampled_from(["", "...", " ", "x" * 5001, "a\x00b", "!!"])
FIELDS = st.fixed_dictionaries(
    {"messages": st.fixed_dictionaries({"fr": st.one_of(WORDS, ODD)})},
    optional={
        "ring_timeout": st.integers(-5, 400),
        "attempts": st.integers(-1, 12),
        "retry_delay": st.integers(-1, 90_000),
        "amd": st.booleans(),
        "ask_eta": st.booleans(),
        "name": st.one_of(WORDS, st.just("a\u202eb")),
        "quotas": st.dictionaries(st.sampled_from(["nurse", "Bad Role"]), st.integers(-2, 5)),
    },
)


def accepted(body: dict[str, Any]) -> CampaignSpec | None:
    """The spec if the API would take `body` (schema, then the shared validation)."""
    if CAMPAIGN.problems(body):
        return None
    spec = CampaignSpec(**body)
    try:
        spec.validate()
    except CampaignError:
        return None
    return spec


@pytest.mark.integration
@pytest.mark.timeout(600)
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=FIELDS)
async def test_every_accepted_spec_renders_and_dials(
    alerter: Alerter, db: Redis, body: dict[str, Any]
) -> None:
    spec = accepted(body)
    if spec is None:
        return  # refused: with a 422 by the API, exit 2 by the CLI (tested above)
    spec = dataclasses.replace(spec, ring_timeout=min(spec.ring_timeout, 10), key_wait=3)
    cid = await store.create(db, spec, [person("n0", "nurse", "1011")])
    audio = await load_audio(alerter, db, cid)
    claim = await alerter_claim(db, cid)
    result = await alerter.caller.call(await call_request(alerter, claim, audio))
    assert result.outcome in (Outcome.AVAILABLE, Outcome.CANCELLED), result
    assert (await reports.report(db, cid))["status"] == "running"


async def alerter_claim(db: Redis, cid: str) -> Any:
    from ivr.campaign.scheduler import Scheduler

    claim = await Scheduler(db).claim(cid, int(1e13), lease_ms=60_000, worker="w", asterisk="a")
    assert claim is not None
    return claim
