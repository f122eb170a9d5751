"""A real SMPP 3.4 SMSC for tests: smpp34's server engine (not a protocol stub of ours), with
a small listener that records every `submit_sm`, answers it (accept, or reject the numbers it is
told to), sends a delivery receipt for each accepted one, and sends MO replies on demand."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

import smpp34


@dataclass(frozen=True)
class Submit:
    destination: str
    source: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    message_id: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Smsc:
    def __init__(self, *, receipts: bool = True, refuse: frozenset[str] = frozenset()) -> None:
        self.port = free_port()
        self.server = smpp34.Server(host="127.0.0.1", port=self.port, system_id="TESTSMSC")
        self.receipts = receipts
        self.refuse = refuse
        self.submits: list[Submit] = []
        self.sessions: dict[str, smpp34.Esme] = {}
        self.binds = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._receipts: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.server.start()
        self._task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        for task in [*self._receipts, *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, smpp34.SmppError):
                await task
        await self.server.stop()

    async def wait_for(self, submits: int = 0, binds: int = 0, timeout: float = 20) -> None:
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: len(self.submits) >= submits and self.binds >= binds
                )

        await asyncio.wait_for(until(), timeout)

    async def mo(self, sender: str, text: bytes, data_coding: int = 0) -> None:
        """A phone's SMS to the bound ESME."""
        esme = next(e for e in self.sessions.values() if e.can_receive)
        resp = await esme.deliver_sm("CHU", text, source_addr=sender, data_coding=data_coding)
        assert resp.is_success

    async def _serve(self) -> None:
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                self.sessions[event.session_id] = event
                self.binds += 1
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                await self._submit(event)
            async with self._changed:
                self._changed.notify_all()

    async def _submit(self, event: smpp34.SubmitSmEvent) -> None:
        if event.destination_addr in self.refuse:
            event.reject(smpp34.ESME_RINVDSTADR)
            return
        message_id = f"m{len(self.submits) + 1}"
        event.accept(message_id=message_id)
        self.submits.append(
            Submit(event.destination_addr, event.source_addr, event.data_coding,
                   event.esm_class, event.registered_delivery, event.short_message, message_id)
        )  # fmt: skip
        esme = self.sessions.get(event.session_id)
        if self.receipts and event.registered_delivery and esme is not None:
            # Apart from the loop: a receipt to a session that dropped waits for an answer
            # that never comes, and the loop must go on taking binds.
            text = f"id:{message_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:"
            task = asyncio.create_task(
                self._receipt(esme, event.source_addr, event.destination_addr, text)
            )
            self._receipts.add(task)
            task.add_done_callback(self._receipts.discard)

    @staticmethod
    async def _receipt(esme: smpp34.Esme, to: str, source: str, text: str) -> None:
        with contextlib.suppress(smpp34.SmppError, TimeoutError):
            await asyncio.wait_for(
                esme.deliver_sm(to, text.encode(), source_addr=source, esm_class=4), 5
            )
