"""SIPp as an SMS peer of the sandbox Asterisk: a gateway that receives SIP MESSAGEs, and a phone
that sends them (the SMS replies of staff).

- `receive(sipp, count)`: a SIPp UAS on a free port answering `count` out-of-dialog MESSAGEs
  with 200; `Inbox.to_template` reaches it through the sandbox's trunk endpoint
  (`pjsip:ivr-test-trunk/sip:{number}@127.0.0.1:<port>`, the form of IVR_SMS_SIP_TO), and
  `messages()` parses what it received from SIPp's message log.
- `send(sipp, sender, text)`: one MESSAGE from the sandbox's test phone (endpoint
  ivr-test-phone, found by its From user) to extension `sms`, which ivr-test.conf sends to the
  service's `ivr-sms-in` context; the sender's number rides in a P-Asserted-Identity, as a
  gateway passes it on.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.sipp import PHONE_USER, TRUNK, Sipp, SippResult, _message, _Run


@dataclass(frozen=True)
class Received:
    """One MESSAGE the gateway received."""

    to_user: str
    from_header: str
    content_type: str
    body: str


def _parse(log: str) -> list[Received]:
    out = []
    # SIPp's message log: "---- <time>", "UDP message received [N] bytes:", a blank line, the
    # message (LF line ends), per message.
    for block in re.split(r"^-{5,}[^\n]*\n", log, flags=re.M):
        _, _, message = block.partition("bytes:\n\n")
        if not block.startswith("UDP message received") or not message.startswith("MESSAGE "):
            continue
        head, _, body = message.partition("\n\n")
        to_user = re.match(r"MESSAGE sip:([^@;>]*)", head)
        headers = {
            m.group(1).lower(): m.group(2).strip()
            for m in re.finditer(r"^([A-Za-z-]+):(.*)$", head, re.M)
        }
        length = int(headers.get("content-length", "0"))
        text = body.encode("utf-8")[:length].decode("utf-8", errors="replace")
        out.append(
            Received(
                to_user.group(1) if to_user else "",
                headers.get("from", ""),
                headers.get("content-type", ""),
                text,
            )
        )
    return out


class Inbox:
    """A SIPp gateway receiving MESSAGEs (see the module docstring)."""

    def __init__(self, run: _Run, timeout: float) -> None:
        self._run = run
        self._timeout = timeout
        self.port = run.sip_port
        self.to_template = f"pjsip:{TRUNK}/sip:{{number}}@127.0.0.1:{self.port}"

    async def wait(self) -> SippResult:
        """Until it received its count (or its timeout)."""
        return await self._run.wait(self._timeout)

    async def messages(self) -> list[Received]:
        return _parse((await self.wait()).messages)


_OK = _message(
    """SIP/2.0 200 OK
    [last_Via:]
    [last_From:]
    [last_To:];tag=[pid]SIPpTag01[call_number]
    [last_Call-ID:]
    [last_CSeq:]
    Content-Length: 0

    """
)


@contextlib.asynccontextmanager
async def receive(sipp: Sipp, count: int, *, timeout: float = 60.0) -> AsyncIterator[Inbox]:
    """A gateway answering `count` MESSAGEs with 200 OK, each in its own SIPp call."""
    run = _Run(sipp, "info", uas=True)
    run.xml = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<scenario name="sms-gateway">\n'
        f'<recv request="MESSAGE"/>\n<send><![CDATA[\n{_OK}]]></send>\n</scenario>\n'
    )
    (run.workdir / "scenario.xml").write_text(run.xml, encoding="ascii")
    run.start(["-m", str(count)], timeout)
    inbox = Inbox(run, timeout)
    try:
        await run.listening()
        yield inbox
    finally:
        await run.stop()


async def send(sipp: Sipp, sender: str, text: str, *, timeout: float = 20.0) -> SippResult:
    """One MESSAGE from the test phone to `sms`, as `sender` (the staff's mobile number)."""
    if not re.fullmatch(r"\+?[0-9]{2,20}", sender) or "]]>" in text or "[" in text:
        raise ValueError("a plain number and a text without SIPp keywords")
    body = text.encode("utf-8")
    message = _message(
        f"""MESSAGE sip:sms@[remote_ip]:[remote_port] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        From: <sip:{PHONE_USER}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
        To: <sip:sms@[remote_ip]:[remote_port]>
        Call-ID: [call_id]
        CSeq: 1 MESSAGE
        P-Asserted-Identity: <sip:{sender}@127.0.0.1>
        Max-Forwards: 70
        Content-Type: text/plain;charset=UTF-8
        Content-Length: {len(body)}

        @BODY@"""
    )
    run = _Run(sipp, "info", uas=False, extension="sms")
    run.xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="sms-phone">\n'
        f'<send retrans="500"><![CDATA[\n{message}]]></send>\n'
        '<recv response="202" optional="true" next="done"/>\n<recv response="200"/>\n'
        '<label id="done"/>\n</scenario>\n'
    ).replace("@BODY@", text)
    (run.workdir / "scenario.xml").write_text(run.xml, encoding="utf-8")
    run.start(["-m", "1", "-l", "1", sipp.server], timeout)
    return await run.wait(timeout)


__all__ = ["Inbox", "Received", "receive", "send"]
