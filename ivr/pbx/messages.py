"""SIP MESSAGE through Asterisk: the SMS transport of a GSM gateway or a SIP trunk.

Outbound, AMI `MessageSend` (write class `message`) to `IVR_SMS_SIP_TO` with the number in it
(`pjsip:<endpoint>/sip:<number>@<host>`); the text goes base64, so any character survives the
AMI's line format. Asterisk answers Success once the peer accepted the MESSAGE (2xx), an
error otherwise. Inbound, the `ivr-sms-in` context (ivr/dialplans/ivr-sms.conf) turns every
MESSAGE into an `IvrSms` UserEvent with the sender and the text in base64.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ivr.errors import AmiNotConnected, InvalidNumberError, SmsRefused
from ivr.numbers import normalize_number
from ivr.pbx.ami import AmiLink

#: The user part of a SIP or tel URI: `"Name" <sip:+33611223344@gw;user=phone>` -> +336...
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)")


@dataclass(frozen=True)
class InboundMessage:
    """An SMS that reached Asterisk: its sender's number ("" when it has none) and its text."""

    sender: str
    body: str
    #: The sender as Asterisk gave it (for the audit of unknown senders).
    raw_sender: str = ""
    #: The message's SIP Call-ID: the same for every AMI session that sees it.
    message_id: str = ""


class SipMessages:
    """Sends SMS as SIP MESSAGE over one AMI link, and hands inbound ones to handlers."""

    def __init__(self, link: AmiLink, to_template: str, sender: str = "") -> None:
        self.link = link
        self.to_template = to_template
        self.sender = sender

    @property
    def is_up(self) -> bool:
        return self.link.is_up

    async def wait_up(self, timeout: float) -> None:
        await self.link.wait_up(timeout)

    async def send(self, number: str, text: str) -> str | None:
        """Send `text` to `number`. SmsRefused: Asterisk or the peer said no (not retried);
        AmiNotConnected: nothing was sent; other AmiErrors: sent or not, nobody knows."""
        try:
            to = self.to_template.replace("{number}", normalize_number(number))
        except InvalidNumberError as exc:
            raise SmsRefused(f"SMS to {number!r} refused: {exc}") from None
        fields: dict[str, Any] = {
            "Action": "MessageSend",
            "To": to,
            "Base64Body": base64.b64encode(text.encode("utf-8")).decode("ascii"),
        }
        if self.sender:
            fields["From"] = self.sender
        reply = await self.link.action(fields)
        if not isinstance(reply, list) and reply.get("Response") == "Success":
            return None  # Asterisk gives no message id (nor any receipt)
        said = reply[0].get("Message") if isinstance(reply, list) else reply.get("Message")
        raise SmsRefused(f"SMS to {number} refused by Asterisk: {said or 'no reason given'}")

    def on_message(self, handler: Callable[[InboundMessage], None]) -> None:
        """Call `handler` for every SMS the `ivr-sms-in` context reports."""

        def event(message: Any) -> None:
            if message.get("Event") == "UserEvent" and message.get("UserEvent") == "IvrSms":
                handler(parse_event(message))

        self.link.on_event(event)


def parse_event(message: Any) -> InboundMessage:
    """The `IvrSms` UserEvent, decoded; a sender without a valid number gets `sender=""`."""
    raw = _b64(str(message.get("From", "")))
    body = _b64(str(message.get("Body", "")))
    match = _URI_USER.search(raw)
    try:
        sender = normalize_number(match.group(1)) if match else ""
    except InvalidNumberError:
        sender = ""
    return InboundMessage(sender, body, raw, str(message.get("Id", "")))


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


__all__ = ["AmiNotConnected", "InboundMessage", "SipMessages", "parse_event"]
