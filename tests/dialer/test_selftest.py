"""`ivr selftest` against the sandbox: SIPp answering phones behind the trunk endpoint, in both
DTMF transports, a phone that never presses, a trunk whose dtmf_mode loses RFC 4733 keys."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.dialer.alerter import Alerter
from ivr.dialer.selftest import RouteCheck, render, run_selftest
from ivr.errors import ConfigError
from ivr.sandbox import asterisk as sandbox
from tests.sipfarm import PHONES, farm
from tests.sipp import Sipp, sandbox_root

CREDENTIALS = {"IVR_AMI_USER": "ivr", "IVR_AMI_SECRET": "x"}


def test_targets_are_whole_dial_strings() -> None:
    config = load_config(
        {**CREDENTIALS, "IVR_SELFTEST_TARGETS": " PJSIP/1000@trunk, Local/1011@ivr-sim ,"}
    )
    assert config.selftest_targets == ("PJSIP/1000@trunk", "Local/1011@ivr-sim")
    assert load_config(CREDENTIALS).selftest_targets == ()
    for bad, why in [
        ("PJSIP/1000@trunk&PJSIP/2000@trunk", "not a dial string"),
        ("PJSIP/1000@trunk;x", "not a dial string"),
        ("1000", "not a dial string"),
        ("PJSIP/{number}@trunk", "not a dial string"),
        ("PJSIP/1@t,PJSIP/1@t", "listed twice"),
    ]:
        with pytest.raises(ConfigError, match=why) as caught:
            load_config({**CREDENTIALS, "IVR_SELFTEST_TARGETS": bad})
        assert str(caught.value).startswith("IVR_SELFTEST_TARGETS: ")


def test_verdicts_and_report() -> None:
    ok = RouteCheck("PJSIP/1@a", "available", "key 1", True, "1", 0.4, 1.6)
    silent = RouteCheck("PJSIP/2@b", "hung_up", "no key", True, None, 0.3, None)
    busy = RouteCheck("PJSIP/3@c", "busy", "busy", False, None, None, None)
    assert [c.ok for c in (ok, silent, busy)] == [True, False, False]
    assert silent.verdict == "answered, but no key came back: the DTMF path is broken"
    assert busy.verdict == "not answered: busy (busy)"
    text = render([ok, silent, busy])
    assert "PJSIP/1@a  key    yes       1    0.4 s      1.6 s    ok" in text
    assert text.endswith("1 of 3 checks ok; 2 FAILED")
    busy_ok = RouteCheck("Local/3@x", "busy", "busy", False, None, None, None, check="busy")
    hidden = RouteCheck("Local/3@y", "failed", "congestion", False, None, None, None, "busy")
    assert busy_ok.ok and not hidden.ok
    assert hidden.verdict.startswith("busy came back as failed (congestion): the route loses")


@pytest.mark.integration
async def test_every_route_brings_key_1_back(alerter: Alerter) -> None:
    sipp = Sipp(sandbox_root())
    async with (
        sipp.answer(key="1", delay_ms=1000, dtmf="rfc4733") as rfc,
        sipp.answer(key="1", delay_ms=1000, dtmf="info") as info,
    ):
        targets = [rfc.channel("1000"), info.channel("1001"), "Local/1011@ivr-sim"]
        checks = await run_selftest(alerter, targets)
        phones = [await rfc.wait(), await info.wait()]
    for phone in phones:
        assert phone.ok, phone.explain()
    print("\n" + render(checks))
    assert [c.target for c in checks] == targets
    assert all(c.ok and c.answered and c.key == "1" for c in checks), render(checks)
    for check in checks:
        assert check.time_to_answer is not None and 0 <= check.time_to_answer < 3
        assert check.time_to_key is not None and 0.5 < check.time_to_key < 8


@pytest.mark.integration
async def test_broken_dtmf_paths_are_reported(alerter: Alerter) -> None:
    sipp = Sipp(sandbox_root())
    async with (
        sipp.answer(key=None, dtmf="rfc4733") as silent,
        sipp.answer(key="1", delay_ms=1000, dtmf="rfc4733") as mismatched,
    ):
        targets = [
            silent.channel("1000"),
            # This trunk is in-band only: the phone's RFC 4733 key never reaches the dialplan.
            mismatched.channel("1000", endpoint="ivr-test-trunk-inband"),
            "Local/9000@ivr-sim",  # no such number
        ]
        checks = await run_selftest(alerter, targets, key_wait=3)
        await silent.wait()
        await mismatched.wait()
    print("\n" + render(checks))
    dtmf_broken = "answered, but no key came back: the DTMF path is broken"
    assert [c.verdict for c in checks[:2]] == [dtmf_broken, dtmf_broken]
    assert all(c.answered and c.time_to_answer is not None for c in checks[:2])
    assert not checks[2].answered and checks[2].verdict.startswith("not answered: failed")
    assert not any(c.ok for c in checks)


@pytest.mark.integration
async def test_cli_exit_status_and_json(alerter: Alerter, tmp_path: Path) -> None:
    """The real command, in its own process: exit 0 when every route is ok, 1 otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        {
            k: v
            for k, v in (
                line.split("=", 1)
                for line in sandbox.env_file().read_text().splitlines()
                if "=" in line and not line.startswith("#")
            )
        }
    )
    env["IVR_SELFTEST_TARGETS"] = "Local/1011@ivr-sim"

    async def ivr(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "selftest", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await ivr()
    assert (code, err) == (0, ""), out
    assert out.splitlines()[-1] == "1 of 1 checks ok"

    code, out, _ = await ivr(
        "--json", "--key-wait", "2", "Local/1011@ivr-sim", "Local/1000@ivr-sim"
    )
    assert code == 1
    results = json.loads(out)
    assert [(r["target"], r["ok"]) for r in results] == [
        ("Local/1011@ivr-sim", True),
        ("Local/1000@ivr-sim", False),
    ]
    assert results[1]["verdict"] == "answered, but no key came back: the DTMF path is broken"

    code, _, err = await ivr("PJSIP/1000@trunk;Dial")
    assert code == 2 and "IVR_SELFTEST_TARGETS" in err


@pytest.mark.integration
async def test_busy_checks_find_the_route_that_hides_busy(alerter: Alerter) -> None:
    """Busy through the simulated phones, through a hospital's own context to a SIP phone that
    answers 486: busy. Through a route that turns busy into congestion: reported."""
    phones = [PHONES["486"]]
    async with farm(Sipp(sandbox_root()), calls=1, phones=phones) as sip:
        busy = [
            "Local/3999@ivr-sim",
            sip.local_template.replace("{number}", "48601"),
            "Local/3999@ivr-test-busy-hidden",
        ]
        checks = await run_selftest(alerter, [], busy=busy)
        verdict = await sip.wait()
    print("\n" + render(checks))
    assert verdict.ok, verdict.explain()
    assert [c.check for c in checks] == ["busy"] * 3
    assert [c.ok for c in checks] == [True, True, False], render(checks)
    assert checks[2].verdict == (
        "busy came back as failed (congestion): the route loses the callee's hangup cause "
        "(README, Custom contexts)"
    )
    assert render(checks).endswith("2 of 3 checks ok; 1 FAILED")
