"""The FastAGI server's shutdown: it must not hang on one call's flow.

Python 3.11's `asyncio.wait_for` can swallow a cancellation that meets its own result, and the
flow then runs on; once, CI hung 120 s in the lines fixture's teardown. A flow that ignores its
first cancellation stands in for it here (the client is a socket speaking the AGI header, as
Asterisk does before the first command)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ivr.pbx import agi
from ivr.pbx.agi import AgiServer, AgiSession


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
    assert took < agi.CLOSE_GRACE * 2, took
    [where] = server.stragglers
    assert "test_agi_close.py" in where and "(stubborn)" in where, where
