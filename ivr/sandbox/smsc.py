"""A simulated GSM gateway for the demo: a real SMPP 3.4 server (smpp34's engine) on loopback
whose "phones" accept every SMS, send a delivery receipt, and reply as told (`replies`: number ->
text, such as "1 30"), a moment later, as staff reading an SMS would."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine
from typing import Any

import smpp34


class SimulatedGateway:
    """Start with `start()`, stop with `stop()`; the service binds to 127.0.0.1:`port`."""

    def __init__(self, replies: dict[str, str], *, delay: float = 1.0) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.replies = dict(replies)
        self.delay = delay
        self.received = 0
        self._server = smpp34.Server(host="127.0.0.1", port=self.port, system_id="SIMGSM")
        self._sessions: dict[str, smpp34.Esme] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._server.start()
        self._spawn(self._serve())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, smpp34.SmppError):
                await task
        with contextlib.suppress(smpp34.SmppError):
            await self._server.stop()

    async def _serve(self) -> None:
        while True:
            event = await self._server.next()
            if isinstance(event, smpp34.Esme):
                self._sessions[event.session_id] = event
            elif isinstance(event, smpp34.SubmitSmEvent):
                self.received += 1
                message_id = f"sim{self.received}"
                event.accept(message_id=message_id)
                esme = self._sessions.get(event.session_id)
                if esme is not None:
                    self._spawn(self._phone(esme, event.destination_addr, message_id))

    async def _phone(self, esme: smpp34.Esme, number: str, message_id: str) -> None:
        receipt = f"id:{message_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:"
        await esme.deliver_sm("SIM", receipt.encode(), source_addr=number, esm_class=4)
        reply = self.replies.pop(number, None)  # a person answers one SMS, once
        if reply is not None:
            await asyncio.sleep(self.delay)  # the time to read it
            await esme.deliver_sm("SIM", reply.encode(), source_addr=number)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
