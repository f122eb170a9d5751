"""SMPP 3.4 to a GSM gateway or an operator's SMSC: one transceiver bind, kept up.

The protocol is smpp34's (a maintained Rust engine with an asyncio API: framing, windowing,
enquire_link, timers); this adapter is the only module that imports it. It binds as a
transceiver, sends `submit_sm` (GSM 03.38 or UCS-2, long texts in concatenated parts with a
UDH: `ivr.sms.encoding`) asking for a delivery receipt, and hands every `deliver_sm` on:
receipts (esm_class 0x04) to `on_receipt`, the rest (replies from phones, MO) to
`on_message`. When the SMSC drops the session it binds again, with a growing pause; a
message sent while it was down fails with SmsNotSent (nothing left), one whose answer the drop
cut off with SmsLinkLost (the SMSC may have it: not sent again). The password is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import smpp34

from ivr.errors import InvalidNumberError, SmsLinkLost, SmsNotSent, SmsRefused
from ivr.numbers import normalize_number
from ivr.pbx.messages import InboundMessage
from ivr.sms import encoding

log = logging.getLogger(__name__)

#: esm_class bits of a deliver_sm that is a delivery receipt, and of a UDH in front.
RECEIPT, UDH = 0x04, 0x40
#: registered_delivery: a receipt on success and on failure.
WANT_RECEIPT = 0x01
#: Tags of the receipted_message_id and message_state TLVs (SMPP 3.4, 5.3.2.12 and 5.3.2.35;
#: smpp34 has them as module constants its stubs do not declare), and the delivered state.
TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE = 0x001E, 0x0427
_DELIVERED_STATES = {2}
_RECEIPT_ID = re.compile(r"\bid:(\S+)", re.I)
_RECEIPT_STAT = re.compile(r"\bstat:(\S+)", re.I)


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: the SMSC's message id and whether the phone got it."""

    message_id: str
    delivered: bool
    status: str


@dataclass
class SmppLink:
    """One transceiver session to an SMSC; `start()` binds and keeps it bound."""

    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    #: The sender shown on phones (a short number or a name, as the SMSC allows).
    source: str = ""
    on_message: Callable[[InboundMessage], None] | None = None
    on_receipt: Callable[[Receipt], None] | None = None
    _smsc: smpp34.Smsc | None = field(default=None, init=False)
    _up: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _down: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    #: Binds made (a test reads it to see a reconnect).
    binds: int = field(default=0, init=False)

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self, timeout: float) -> None:
        await asyncio.wait_for(self._up.wait(), timeout)

    async def wait_down(self) -> None:
        """Return once the current session is lost."""
        await self._down.wait()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="smpp")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        smsc, self._smsc = self._smsc, None
        self._up.clear()
        if smsc is not None:
            with contextlib.suppress(smpp34.SmppError, OSError, RuntimeError):
                await asyncio.wait_for(smsc.unbind(), 2)

    async def send(self, number: str, text: str) -> str | None:
        """Submit `text` to `number` (in parts if long); the SMSC's id of the last part."""
        try:
            destination = normalize_number(number)
        except InvalidNumberError as exc:
            raise SmsRefused(f"SMS to {number!r} refused: {exc}") from None
        smsc = self._smsc
        if smsc is None or not self.is_up:
            raise SmsNotSent(f"SMPP link to {self.host}:{self.port} is down")
        coding, parts, udh = encoding.short_messages(text)
        message_id = None
        for part in parts:
            try:
                resp = await smsc.submit_sm(
                    destination, part, source_addr=self.source, data_coding=coding,
                    esm_class=UDH if udh else 0, registered_delivery=WANT_RECEIPT,
                )  # fmt: skip
            except (smpp34.SmppError, OSError, RuntimeError) as exc:
                # Written or not, the SMSC may have it: never sent again (at most once).
                raise SmsLinkLost(f"SMPP link lost while sending to {number}: {exc}") from None
            if not resp.is_success:
                raise SmsRefused(
                    f"SMS to {number} refused by the SMSC (command_status "
                    f"0x{resp.command_status:08X})"
                )
            message_id = resp.message_id
        return message_id

    async def _supervise(self) -> None:
        pause = 0.2
        while True:
            try:
                client = smpp34.Client(
                    self.host, self.port, self.system_id, self.password, bind_type="TRX"
                )
                smsc = await client.connect()
            except (smpp34.SmppError, OSError, RuntimeError) as exc:
                log.warning("SMPP bind to %s:%d failed: %s", self.host, self.port, exc)
                await asyncio.sleep(pause)  # reconnect backoff
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.2
            self._smsc = smsc
            self.binds += 1
            self._down.clear()
            self._up.set()
            log.info("SMPP bound to %s:%d as %s", self.host, self.port, self.system_id)
            try:
                await self._pump(smsc)
            finally:
                self._up.clear()
                self._down.set()
                self._smsc = None
            log.warning("SMPP session with %s:%d lost; binding again", self.host, self.port)

    async def _pump(self, smsc: smpp34.Smsc) -> None:
        while True:
            try:
                event = await smsc.next()
            except (smpp34.SmppError, OSError, RuntimeError):
                return
            if isinstance(event, smpp34.Disconnected):
                return
            self._deliver(event)

    def _deliver(self, event: smpp34.DeliverSmEvent) -> None:
        try:
            if event.esm_class & RECEIPT:
                if self.on_receipt is not None:
                    self.on_receipt(receipt(event))
            elif self.on_message is not None:
                self.on_message(inbound(event))
        except Exception:
            log.exception("SMPP deliver_sm not handled")


def receipt(event: smpp34.DeliverSmEvent) -> Receipt:
    """The receipt in a deliver_sm: its TLVs when present, else its text (SMPP 3.4 app. B)."""
    text = event.short_message.decode("latin-1")
    tlvs = {t.tag: t for t in event.tlvs}
    found = tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    id_match = _RECEIPT_ID.search(text)
    message_id = (found.as_string() if found else None) or (id_match[1] if id_match else "")
    state = tlvs.get(TLV_MESSAGE_STATE)
    stat = _RECEIPT_STAT.search(text)
    status = stat[1].upper() if stat else ""
    if state is not None and state.as_int() is not None:
        delivered = state.as_int() in _DELIVERED_STATES
    else:
        delivered = status == "DELIVRD"
    return Receipt(message_id.rstrip("\x00"), delivered, status or ("DELIVRD" if delivered else ""))


def inbound(event: smpp34.DeliverSmEvent) -> InboundMessage:
    """A phone's SMS (MO) as the inbox takes it."""
    body = event.short_message
    if event.esm_class & UDH and body:
        body = body[1 + body[0] :]  # a concatenated reply: each part is handled alone
    text = encoding.decode(body, event.data_coding)
    try:
        sender = normalize_number(event.source_addr)
    except InvalidNumberError:
        sender = ""
    return InboundMessage(sender, text, event.source_addr)
