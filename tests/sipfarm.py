"""A farm of SIP phones: one SIPp answering process (UAS) taking many calls at once, each phone
behaving as the number dialled says, the way people and networks do.

The sandbox's simulated phones (ivr-sim) live inside Asterisk; these are real SIP peers behind
the sandbox's trunk endpoint: they answer with 486, 480, 603, 404 or 503, ring until the caller
gives up, or answer and press keys (RFC 4733 or SIP INFO) at a given moment after the answer,
silent or speaking first, hang up, or play an answering machine's greeting. A number is a
behaviour code (`CODES`) followed by free digits, so many calls can share one behaviour.

Two routes reach them: the trunk endpoint directly (`dial_template`), and a hospital's own
Local context that dials the trunk and hangs up (`local_template`, context `ivr-test-hospital`
in ivr/dialplans/ivr-test.conf; the farm's port travels in front of the number).

`async with farm(sipp, calls=N) as phones:` starts SIPp for N calls; `await phones.wait()` after
the calls gives SIPp's own verdict (exit 0: every call went as its behaviour scripted).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ivr.outcomes import Outcome
from tests.sipp import (
    TRUNK,
    Audio,
    DtmfMode,
    Hangup,
    Keys,
    Sipp,
    SippResult,
    Step,
    Wait,
    WaitBye,
    _message,
    _Run,
    _Script,
    _sdp,
)


@dataclass(frozen=True)
class Phone:
    """One behaviour: a SIP final answer (`reject`), ringing until cancelled (`ring`), or an
    answer followed by `steps` with keys sent as `dtmf` says."""

    code: str
    expected: Outcome
    description: str
    reject: str = ""
    ring: bool = False
    steps: tuple[Step, ...] = ()
    dtmf: DtmfMode = "rfc4733"


#: "Allô ?": what a person says when answering (a tone, which answering-machine detection
#: hears as voice).
HELLO = Audio(600)


def _keyed(code: str, at_ms: int, key: str, dtmf: DtmfMode, *, speak: bool = False) -> Phone:
    """Answers, says hello first if `speak`, presses `key` `at_ms` after the answer."""
    before: list[Step] = [HELLO] if speak else []
    waited = HELLO.ms if speak else 0
    if at_ms > waited:
        before.append(Wait(at_ms - waited))
    expected = Outcome.AVAILABLE if key == "1" else Outcome.UNAVAILABLE
    how = f"{'speaks, then ' if speak else ''}presses {key} at {at_ms} ms ({dtmf})"
    return Phone(code, expected, how, steps=(*before, Keys(key, mode=dtmf), WaitBye()), dtmf=dtmf)


#: Every behaviour, by the first three digits of the number.
PHONES = {
    p.code: p
    for p in (
        Phone("486", Outcome.BUSY, "486 Busy Here", reject="486 Busy Here"),
        Phone("480", Outcome.NO_ANSWER, "480 Temporarily Unavailable",
              reject="480 Temporarily Unavailable"),
        Phone("603", Outcome.BUSY, "603 Decline", reject="603 Decline"),
        Phone("404", Outcome.FAILED, "404 Not Found", reject="404 Not Found"),
        Phone("503", Outcome.FAILED, "503 Service Unavailable",
              reject="503 Service Unavailable"),
        Phone("180", Outcome.NO_ANSWER, "rings until the caller gives up", ring=True),
        _keyed("210", 0, "1", "rfc4733"),
        _keyed("211", 200, "1", "rfc4733"),
        _keyed("212", 1000, "1", "rfc4733"),
        _keyed("213", 2000, "1", "rfc4733"),
        _keyed("215", 0, "1", "info"),
        _keyed("216", 1000, "1", "info"),
        _keyed("220", 1000, "1", "rfc4733", speak=True),
        _keyed("221", 2000, "1", "rfc4733", speak=True),
        _keyed("225", 2000, "1", "info", speak=True),
        _keyed("230", 3000, "2", "rfc4733", speak=True),
        _keyed("231", 500, "2", "info"),
        Phone("240", Outcome.HUNG_UP, "answers, says hello, hangs up",
              steps=(HELLO, Wait(400), Hangup())),
        Phone("250", Outcome.VOICEMAIL, "an answering machine: long greeting, beep, silence",
              steps=(Audio(4000), Audio(300, silence=True), Audio(400),
                     Audio(2000, silence=True), WaitBye())),
    )
}  # fmt: skip


def _ringing() -> str:
    return _message(
        """SIP/2.0 180 Ringing
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        [last_CSeq:]
        Content-Length: 0

        """
    )


def _final(status: str, *, cseq: str = "[last_CSeq:]") -> str:
    return _message(
        f"""SIP/2.0 {status}
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        {cseq}
        Content-Length: 0

        """
    )


def _answer(dtmf: DtmfMode) -> str:
    return _message(
        f"""SIP/2.0 200 OK
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        [last_CSeq:]
        Contact: <sip:farm@[local_ip]:[local_port]>
        Content-Type: application/sdp
        Content-Length: [len]

        {_sdp(dtmf)}"""
    )


def _send(message: str, retrans: bool = False) -> str:
    attributes = ' retrans="500"' if retrans else ""
    return f"<send{attributes}><![CDATA[\n{message}]]></send>"


def scenario(run: _Run, phones: Sequence[Phone]) -> str:
    """The UAS scenario: take the INVITE, branch on the number's code, play that behaviour."""
    opening = [
        '<recv request="INVITE" rrs="true">\n  <action>',
        '    <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="theirs"/>',
        '    <ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="to"/>',
    ]
    if any(p.ring for p in phones):
        # SIPp refuses a variable set and never used: only a ringing phone needs the CSeq.
        opening.append(
            '    <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/>'
        )
    for p in phones:
        opening.append(
            f'    <ereg regexp="^INVITE sip:{p.code}" search_in="msg" check_it="false" '
            f'assign_to="is{p.code}"/>'
        )
    opening.append("  </action>\n</recv>")
    opening += [f'<nop test="is{p.code}" next="b{p.code}"/>' for p in phones]
    # Any other number: unknown here.
    opening += [_send(_final("404 Not Found")), '<recv request="ACK"/>', '<nop next="end"/>']
    blocks: list[str] = []
    for p in phones:
        blocks.append(f'<label id="b{p.code}"/>')
        if p.reject:
            blocks += [_send(_final(p.reject)), '<recv request="ACK"/>']
        elif p.ring:
            blocks += [
                _send(_ringing()),
                '<recv request="CANCEL"/>',
                _send(_final("200 OK")),
                _send(_final("487 Request Terminated", cseq="CSeq: [$cseq] INVITE")),
                '<recv request="ACK"/>',
            ]
        else:
            script = _Script(run.workdir, run.inside, p.dtmf, True)
            # One RTP stream per call, rising across its pcaps; pcap files named once each.
            script.rtp, script.files = run.script.rtp, run.script.files
            for step in p.steps:
                script.step(step)
            run.script.files = script.files
            blocks += [_send(_ringing()), _send(_answer(p.dtmf), retrans=True)]
            blocks += ['<recv request="ACK" rtd="true"/>', *script.parts]
        blocks.append('<nop next="end"/>')
    body = "\n".join([*opening, *blocks, '<label id="end"/>'])
    head = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<scenario name="farm">'
    return f"{head}\n{body}\n</scenario>\n"


class Farm:
    """The running farm: its dial templates, and SIPp's verdict once the calls are over."""

    def __init__(self, run: _Run, timeout: float) -> None:
        self._run = run
        self._timeout = timeout
        self.port = run.sip_port
        #: Straight to the trunk endpoint.
        self.dial_template = f"PJSIP/{TRUNK}/sip:{{number}}@127.0.0.1:{self.port}"
        #: Through a hospital's own Local context (it dials the trunk, then hangs up).
        self.local_template = f"Local/{self.port:05d}{{number}}@ivr-test-hospital"

    async def wait(self) -> SippResult:
        return await self._run.wait(self._timeout)


@contextlib.asynccontextmanager
async def farm(
    sipp: Sipp, *, calls: int, phones: Sequence[Phone] | None = None, timeout: float = 180.0
) -> AsyncIterator[Farm]:
    """SIPp answering `calls` calls (at once or not), each as its number's behaviour says."""
    run = _Run(sipp, "rfc4733", uas=True)
    run.xml = scenario(run, list(phones or PHONES.values()))
    (run.workdir / "scenario.xml").write_text(run.xml, encoding="ascii")
    # -l: as many at once as there are calls; -m: SIPp ends after them, with its verdict.
    run.start(["-m", str(calls), "-l", str(calls)], timeout)
    try:
        await run.listening()
        yield Farm(run, timeout)
    finally:
        await run.stop()
