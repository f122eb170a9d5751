"""The FastAGI server must not hang on one call's flow: at shutdown, or on a reply that never
comes.

Python 3.11's `asyncio.wait_for` can swallow a cancellation that meets its own result, and the
flow then runs on; once, CI hung 120 s in the lines fixture's teardown. A flow that ignores its
first cancellation stands in for it here (the client is a socket speaking the AGI header, as
Asterisk does before the first command)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from ivr.pbx import agi, agiserver
from ivr.pbx.agi import AgiSession
from ivr.pbx.agiserver import AgiServer


async def test_close_cancels_a_flow_again_and_names_where_it_waited() -> None:
    started = asyncio.Event()

    async def stubborn(session: AgiSession) -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as 3.11's wait_for may
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    server = AgiServer({"stubborn": stubborn})
    port = await server.start()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network_script: stubborn\nagi_channel: PJSIP/test-1\n\n")
    await writer.drain()
    await started.wait()
    begun = time.monotonic()
    await server.close()
    took = time.monotonic() - begun
    writer.close()
    assert took < agiserver.CLOSE_GRACE * 2, took
    [where] = server.stragglers
    assert "test_agiserver.py" in where and "(stubborn)" in where, where


async def test_a_quick_command_left_unanswered_ends_the_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hung-up call's FastAGI session once got no reply to CHANNEL STATUS, and its flow
    waited for the hour every command was allowed; a command Asterisk answers at once now
    counts as a hang-up when its reply does not come."""
    monkeypatch.setattr(agi, "QUICK_TIMEOUT", 0.5)
    ended: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def flow(session: AgiSession) -> None:
        try:
            await session.command("CHANNEL STATUS")
        except BaseException as exc:
            ended.set_result(exc)
            raise

    async with AgiServer({"flow": flow}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: flow\n\n")
        assert await reader.readline() == b"CHANNEL STATUS\n"  # and no answer
        got = await asyncio.wait_for(ended, 5)
        writer.close()
    assert isinstance(got, agi.AgiHangup) and "CHANNEL STATUS" in str(got), got
