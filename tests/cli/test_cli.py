"""`ivr call` as a user runs it: real processes against the sandbox Asterisk."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from ivr.config import Config
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import free_port
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


async def ivr(*args: str, timeout: float = 60, **env: str) -> tuple[int, str, str]:
    """Run `python -m ivr ARGS` with the sandbox's settings plus `env`; (code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ["IVR_CONFIG"] = str(sandbox.env_file())
    environ.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", *args,
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_reports_each_outcome(sandbox_config: Config) -> None:
    cases = {"1011": "available", "1022": "unavailable", "2000": "no_answer", "3000": "busy"}
    runs = await asyncio.gather(
        *(
            ivr("call", number, "--message", "Test.", "--json", IVR_RING_TIMEOUT="6")
            for number in cases
        )
    )
    for (number, expected), (code, out, err) in zip(cases.items(), runs, strict=True):
        assert code == 0, err
        result = json.loads(out)
        assert (result["number"], result["outcome"]) == (number, expected)
        if expected == "no_answer":
            assert result["ended_at"] - result["started_at"] <= 6 + 3


@pytest.mark.parametrize("number", ["0612&34", "06,12", "0612/34", "06@trunk", "06;12", "06\n12"])
async def test_bad_number_refused_before_reaching_ami(sandbox_config: Config, number: str) -> None:
    proxy = TcpProxy(sandbox_config.ami_host, sandbox_config.ami_port)
    await proxy.start()
    try:
        code, out, err = await ivr("call", number, "-m", "x", IVR_AMI_PORT=str(proxy.port))
    finally:
        await proxy.close()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivr: error: phone number"), err
    assert proxy.connections == 0, "nothing reached AMI"


async def test_wrong_secret_one_line_no_hang(sandbox_config: Config) -> None:
    code, _, err = await ivr("call", "1011", "-m", "x", timeout=20, IVR_AMI_SECRET="nope")
    assert code == 3
    assert err.strip().count("\n") == 0 and "refused user" in err, err


async def test_unreachable_asterisk_one_line_no_hang() -> None:
    code, _, err = await ivr("call", "1011", "-m", "x", timeout=20, IVR_AMI_PORT=str(free_port()))
    assert code == 3
    assert err.strip().count("\n") == 0 and "unreachable" in err, err


async def test_broken_config_one_line() -> None:
    code, _, err = await ivr("call", "1011", "-m", "x", IVR_RING_TIMEOUT="soon")
    assert code == 2
    assert err.strip() == "ivr: error: IVR_RING_TIMEOUT: expected a whole number, got 'soon'"
