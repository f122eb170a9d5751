"""`ivr call` interrupted (Ctrl-C, SIGTERM) hangs its call up instead of leaving it ringing in
Asterisk after the process is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import pytest

from ivr.config import Config
from ivr.pbx.ami import AmiLink
from ivr.sandbox import asterisk as sandbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def channels(ami: AmiLink, needle: str) -> list[str]:
    reply: Any = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    names = [str(m.get("Channel", "")) for m in reply if m.get("Event") == "CoreShowChannel"]
    return [n for n in names if needle in n]


async def until(condition: Any, timeout: float) -> None:
    """Poll Asterisk's channel list (a state, not an event) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_interrupted_call_leaves_no_channel(
    sandbox_config: Config, ami: AmiLink, sig: signal.Signals
) -> None:
    number = f"2{os.getpid() % 1000:03d}{sig.value}"  # rings for ever, unique to this test
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ.update(IVR_CONFIG=str(sandbox.env_file()), IVR_RING_TIMEOUT="60")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "call", number, "-m", "Test.",
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    needle = f"Local/{number}@"

    async def ringing() -> bool:
        return bool(await channels(ami, needle))

    async def gone() -> bool:
        return not await channels(ami, needle)

    await until(ringing, 30)
    proc.send_signal(sig)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 130, err
    assert "Traceback" not in err.decode() and "never retrieved" not in err.decode()
    await until(gone, 5)
