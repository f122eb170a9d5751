"""A real SIP phone for tests: SIPp, run inside the sandbox root, scripted from Python.

Two modes:

- **Phone (UAC)**: `await sipp.call("keys", [Wait(500), Keys("123#"), Hangup()])` dials an
  extension of context `ivr-test-phone` (endpoint `ivr-test-phone` in scripts/asterisk/pjsip.conf,
  found by the From user; it includes ivr-test-keys and ivr-lines), then plays the steps.
- **Answering phone (UAS)**: `async with sipp.answer(key="1", delay_ms=2000) as uas:` listens on
  a free port; Asterisk reaches it through the trunk endpoint with `uas.dial_template`
  (`PJSIP/ivr-test-trunk/sip:{number}@127.0.0.1:<port>`); it answers, presses the key after the
  delay, and waits for Asterisk's BYE. `await uas.wait()` gives its result.

Keys travel as the call's `dtmf` mode says (or per `Keys` step):

- `rfc4733`: RTP telephone-event packets (payload type 101, offered in the SDP). Each key is a
  pcap generated for the call (`play_pcap_audio`), 100 ms of event then the end packets, with
  sequence numbers and timestamps that keep increasing over the call. SIPp's stock
  /usr/share/sip-tester/dtmf_2833_*.pcap cannot be used for a key twice: SIPp replays a pcap's
  RTP headers as they are, so a second "1" repeats the first one's timestamp and Asterisk
  rightly drops it as a retransmission of the same event.
- `info`: SIP INFO with `application/dtmf-relay` (`Signal=1`, `Duration=100`), each answered 200.
  The SDP then offers no telephone-event, as an INFO-only phone would.
- `inband`: the two tones of the key in the audio (G.711 A-law, 100 ms), no telephone-event
  offered: with dtmf_mode=auto Asterisk then runs its in-band detector.

A BYE from Asterisk during a scripted pause is ignored (-pause_msg_ign) and met by the next
`WaitBye` when Asterisk retransmits it, 0.5 s or so later; end a script with `WaitBye()` when
Asterisk hangs up, with `Hangup()` when the phone does. Extension `record` (ivr-test.conf)
records what the phone says up to '#'.

`Audio(ms)` plays A-law audio (a generated 440 Hz tone, or silence, or any pcap) for a
recording. Every run gets free local UDP ports (SIP and RTP), so tests may run SIPp
concurrently; each has a hard timeout (SIPp's own `-timeout`, and a kill past it).

Timing measured on the sandbox (tests/test_sip.py prints it with -s): from `call()` to the
`keys` extension answering, 0.11-0.14 s (chroot, SIPp start, INVITE, 200, ACK). A key sent at
once after the ACK (no Wait) is heard in every mode: RFC 4733 about 80 ms after the ACK (the
end packet comes 100 ms into the event), SIP INFO about 100 ms, in-band about 140 ms (the
detector needs some 40 ms of tone after the 100 ms pcap starts). Keys 300 ms apart (the
default gap) all arrive in order, a repeated key too, in each mode. So script a human's
timing with `Wait` (for a prompt to finish), not the harness's: it needs no warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

DtmfMode = Literal["rfc4733", "info", "inband"]

#: The sandbox's SIP transport (scripts/asterisk/pjsip.conf).
SERVER = "127.0.0.1:15060"
#: The sandbox endpoint that takes SIPp's calls (identified by From user).
PHONE_USER = "ivr-test-phone"
#: The sandbox endpoint that calls out to a SIPp UAS.
TRUNK = "ivr-test-trunk"

_KEY_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14}
_KEY_EVENTS["D"] = 15
#: The DTMF grid (low, high) in Hz.
_TONES = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip
#: Milliseconds a key lasts (the event or the tones).
KEY_MS = 100
#: Milliseconds from an INFO key to the next one at the least: its Duration, and a gap.
INFO_RELEASE_MS = KEY_MS + 60
PTIME_MS = 20


# -- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Do nothing for `ms` (a person listening)."""

    ms: int


@dataclass(frozen=True)
class Keys:
    """Press `keys` one after another, `gap_ms` between the end of one and the next (and
    before the first, when the step before was Keys too)."""

    keys: str
    mode: DtmfMode | None = None
    gap_ms: int = 300
    #: Instead of gaps: a key every `every_ms` from the start of one to the start of the next
    #: (a typist's rhythm; at least KEY_MS + 50 so each key ends before the next begins).
    every_ms: int | None = None

    def __post_init__(self) -> None:
        if self.every_ms is not None and self.every_ms < KEY_MS + 50:
            raise ValueError(f"keys every {self.every_ms} ms overlap (each lasts {KEY_MS} ms)")


@dataclass(frozen=True)
class Audio:
    """Speak for `ms`: a 440 Hz tone at -12 dBFS (or `silence=True`), or the pcap `pcap`.

    `pcap` is a path inside the sandbox root (such as /usr/share/sip-tester/g711a.pcap, 7 s);
    `ms` is then how long the scenario waits for it.
    """

    ms: int
    silence: bool = False
    pcap: str | None = None


@dataclass(frozen=True)
class Hangup:
    """Send BYE and wait for its 200."""


@dataclass(frozen=True)
class WaitBye:
    """Wait until Asterisk hangs up (BYE), and answer it."""


@dataclass(frozen=True)
class Cue:
    """Wait for an in-dialog SIP MESSAGE from Asterisk (AMI `SendText` on the call's channel),
    and answer it: how a test tells the phone "now", when the flow it calls is ready for keys."""


Step = Wait | Keys | Audio | Hangup | WaitBye | Cue


@dataclass
class SippResult:
    """How one SIPp run ended, with what it logged."""

    #: SIPp's exit status: 0 the call went as scripted, 1 it failed, 255 its timeout, -9 killed.
    returncode: int | None
    elapsed: float
    timed_out: bool
    #: SIPp's error log (unexpected messages, failed actions); empty when all went well.
    errors: str
    #: Every SIP message sent and received.
    messages: str
    #: SIPp's standard output and error (its statistics screens).
    output: str
    scenario: str = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def explain(self) -> str:
        """A short account for assertion messages."""
        tail = (self.errors or self.output).strip().splitlines()[-15:]
        status = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"SIPp {status} after {self.elapsed:.1f} s:\n" + "\n".join(tail)


# -- media: RTP in pcap files, the form SIPp's play_pcap_audio reads --------------------------


def _alaw(sample: int) -> int:
    """One 16-bit linear sample to G.711 A-law."""
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(sample if sample >= 0 else -sample - 1, 32635) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def _alaw_frames(ms: int, freqs: Sequence[float], amplitude: float) -> list[bytes]:
    frames = []
    samples = ms * 8
    for start in range(0, samples, PTIME_MS * 8):
        chunk = bytearray()
        for n in range(start, min(start + PTIME_MS * 8, samples)):
            value = sum(math.sin(2 * math.pi * f * n / 8000) for f in freqs)
            chunk.append(_alaw(int(amplitude * value)))
        frames.append(bytes(chunk))
    return frames


class RtpWriter:
    """Writes pcaps of one RTP stream: one SSRC, sequence and timestamp rising across files."""

    def __init__(self) -> None:
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(15)
        self.ts = secrets.randbits(31)

    def _packet(self, pt: int, marker: bool, ts: int, payload: bytes) -> bytes:
        rtp = struct.pack(
            "!BBHII", 0x80, pt | (0x80 if marker else 0), self.seq & 0xFFFF, ts, self.ssrc
        )
        self.seq += 1
        udp_len = 8 + len(rtp) + len(payload)
        # Addresses and ports are placeholders: SIPp rewrites them to the call's media.
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0, bytes(4), bytes(4)
        )
        udp = struct.pack("!HHHH", 6000, 6000, udp_len, 0)
        return b"\x00" * 12 + b"\x08\x00" + ip + udp + rtp + payload

    @staticmethod
    def _pcap(packets: list[tuple[float, bytes]]) -> bytes:
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        for at, packet in packets:
            out.append(struct.pack("<IIII", int(at), int(at % 1 * 1e6), len(packet), len(packet)))
            out.append(packet)
        return b"".join(out)

    def key_event(self, key: str) -> bytes:
        """RFC 4733: KEY_MS of event packets every 20 ms, then the end packet three times."""
        event = _KEY_EVENTS[key]
        packets = []
        steps = KEY_MS // PTIME_MS
        for i in range(1, steps + 1):
            payload = struct.pack("!BBH", event, 10, i * PTIME_MS * 8)
            packets.append((i * PTIME_MS / 1000, self._packet(101, i == 1, self.ts, payload)))
        end = struct.pack("!BBH", event, 0x80 | 10, steps * PTIME_MS * 8)
        for _ in range(3):
            packets.append((steps * PTIME_MS / 1000, self._packet(101, False, self.ts, end)))
        self.ts += (steps + 1) * PTIME_MS * 8
        return self._pcap(packets)

    def audio(self, frames: list[bytes]) -> bytes:
        """A-law frames (payload type 8), one every 20 ms."""
        packets = []
        for i, frame in enumerate(frames):
            packets.append((i * PTIME_MS / 1000, self._packet(8, i == 0, self.ts, frame)))
            self.ts += len(frame)
        return self._pcap(packets)

    def tone_key(self, key: str, silence_ms: int = KEY_MS) -> bytes:
        """In-band: the key's two tones for KEY_MS, then `silence_ms` of silence."""
        low, high = _TONES[key]
        frames = _alaw_frames(KEY_MS, (low, high), 8000) + _alaw_frames(silence_ms, (), 0)
        return self.audio(frames)


# -- scenarios -------------------------------------------------------------------------------

_SDP = """v=0
o=sipp 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {payloads}
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
{events}a=ptime:20
a=sendrecv
"""
_EVENTS = "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n"


def _sdp(mode: DtmfMode) -> str:
    offer_events = mode == "rfc4733"
    return _SDP.format(
        payloads="8 0 101" if offer_events else "8 0", events=_EVENTS if offer_events else ""
    ).replace("\n", "\r\n")


def _message(text: str) -> str:
    """A SIP message for a <send>: CRLF line ends, SIPp fills [len]."""
    head, _, body = text.partition("\n\n")
    # An empty line would end the headers early (an optional header left out, say).
    lines = [line.strip() for line in head.strip().splitlines() if line.strip()]
    return "\r\n".join(lines) + "\r\n\r\n" + body


class _Script:
    """Builds one scenario's XML and the media files its steps play."""

    def __init__(
        self, workdir: Path, chroot_dir: str, dtmf: DtmfMode, uas: bool, extension: str = ""
    ) -> None:
        self.workdir = workdir
        self.extension = extension
        self.chroot_dir = chroot_dir
        self.dtmf = dtmf
        self.uas = uas
        self.rtp = RtpWriter()
        self.parts: list[str] = []
        self.cseq = 1
        self.files = 0
        self.after_key = False
        #: An INFO key went last, with only cues since: the next one must wait for its release.
        self.info_held = False
        #: Index in `parts` of the pause that ends the last key played, while it is the last part.
        self.trailing_pause: int | None = None

    def _pcap(self, data: bytes) -> str:
        self.files += 1
        name = f"m{self.files}.pcap"
        (self.workdir / name).write_bytes(data)
        return f"{self.chroot_dir}/{name}"

    def _play(self, path: str, ms: int) -> None:
        self.parts.append(f'<nop><action><exec play_pcap_audio="{path}"/></action></nop>')
        self.parts.append(f'<pause milliseconds="{ms}"/>')

    def _in_dialog(self, method: str, headers: str = "", body: str = "") -> str:
        self.cseq += 1
        if self.uas:
            # Our side of the dialog is the To of Asterisk's INVITE, with the tag we gave it.
            ours, theirs = "[$to];tag=[pid]SIPpTag01[call_number]", "[$theirs]"
        else:
            ours = f"<sip:{PHONE_USER}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
            theirs = f"<sip:{self.extension}@[remote_ip]:[remote_port]>[peer_tag_param]"
        return _message(
            f"""{method} [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
            [routes]
            From: {ours}
            To: {theirs}
            Call-ID: [call_id]
            CSeq: {self.cseq} {method}
            Contact: <sip:{PHONE_USER}@[local_ip]:[local_port]>
            Max-Forwards: 70
            {headers}
            Content-Length: [len]

            {body}"""
        )

    def step(self, step: Step) -> None:
        after_key, self.after_key = self.after_key, isinstance(step, Keys)
        if isinstance(step, Cue | WaitBye) and self.trailing_pause is not None:
            # SIPp ignores a message that arrives during a pause (-pause_msg_ign), and Asterisk
            # sends it again only after its retransmission timer: no pause after the last key
            # when a message is awaited next. The key's pcap plays on while SIPp waits.
            del self.parts[self.trailing_pause]
        self.trailing_pause = None
        if isinstance(step, Wait | Audio):
            self.info_held = False
        if isinstance(step, Wait):
            self.parts.append(f'<pause milliseconds="{step.ms}"/>')
        elif isinstance(step, Keys) and step.every_ms is not None:
            for key in step.keys:
                self.key(key.upper(), step.mode or self.dtmf, every_ms=step.every_ms)
            self.info_held = False
        elif isinstance(step, Keys):
            # The gap goes between keys, not after the last: a Cue that follows must not land
            # in a pause (SIPp ignores a message then, and Asterisk resends it 0.5 s later).
            for i, key in enumerate(step.keys):
                mode = step.mode or self.dtmf
                if i or after_key:
                    self.parts.append(f'<pause milliseconds="{step.gap_ms}"/>')
                elif mode == "info" and self.info_held:
                    # A keypad sends the next key after it releases the last (Duration): an
                    # INFO phone that answers a cue within it is not a phone. It matters, too:
                    # Asterisk emulates an INFO key's end after Duration, and a key that comes
                    # meanwhile waits in its read queue for the next media frame, which a
                    # phone that sends no RTP (this one) never sends (docs/asterisk.md).
                    self.parts.append(f'<pause milliseconds="{INFO_RELEASE_MS}"/>')
                self.key(key.upper(), mode)
                self.info_held = mode == "info"
            if self.parts[-1].startswith("<pause") and self.parts[-2].startswith("<nop>"):
                self.trailing_pause = len(self.parts) - 1
        elif isinstance(step, Audio):
            if step.pcap:
                self._play(step.pcap, step.ms)
            else:
                frames = _alaw_frames(step.ms, () if step.silence else (440,), 8000)
                self._play(self._pcap(self.rtp.audio(frames)), step.ms)
        elif isinstance(step, Hangup):
            self.parts.append(f"<send><![CDATA[\n{self._in_dialog('BYE')}]]></send>")
            self.parts.append('<recv response="200"/>')
        elif isinstance(step, WaitBye):
            self.parts.append('<recv request="BYE"/>')
            self.parts.append(f"<send><![CDATA[\n{_ok_to_request()}]]></send>")
        elif isinstance(step, Cue):
            self.parts.append('<recv request="MESSAGE"/>')
            self.parts.append(f"<send><![CDATA[\n{_ok_to_request()}]]></send>")

    def key(self, key: str, mode: DtmfMode, every_ms: int | None = None) -> None:
        """Press `key`; with `every_ms`, the next one starts `every_ms` after this one."""
        if key not in _KEY_EVENTS:
            raise ValueError(f"not a key: {key!r}")
        if mode == "rfc4733":
            # The end packets go at KEY_MS; SIPp's player sends them while the script goes on.
            self._play(self._pcap(self.rtp.key_event(key)), every_ms or KEY_MS)
        elif mode == "inband":
            silence = KEY_MS if every_ms is None else every_ms - KEY_MS
            self._play(self._pcap(self.rtp.tone_key(key, silence)), every_ms or 2 * KEY_MS)
        else:
            headers = "Content-Type: application/dtmf-relay"
            body = f"Signal={key}\r\nDuration={KEY_MS}\r\n"
            self.parts.append(
                f"<send><![CDATA[\n{self._in_dialog('INFO', headers, body)}]]></send>"
            )
            self.parts.append('<recv response="200"/>')
            if every_ms is not None:
                self.parts.append(f'<pause milliseconds="{every_ms}"/>')

    def xml(self, opening: str) -> str:
        body = "\n".join([opening, *self.parts])
        head = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<scenario name="ivr">'
        return f"{head}\n{body}\n</scenario>\n"


def _ok_to_request() -> str:
    return _message(
        """SIP/2.0 200 OK
        [last_Via:]
        [last_From:]
        [last_To:]
        [last_Call-ID:]
        [last_CSeq:]
        Content-Length: 0

        """
    )


def _uac_opening(extension: str, dtmf: DtmfMode, headers: dict[str, str]) -> str:
    # Messages sit in CDATA, unescaped: only plain values may go in.
    if not re.fullmatch(r"[A-Za-z0-9*#+._-]{1,64}", extension):
        raise ValueError(f"not an extension: {extension!r}")
    for name, value in headers.items():
        if not re.fullmatch(r"[A-Za-z0-9-]+", name) or re.search(r"[\r\n\]]", value):
            raise ValueError(f"not a plain header: {name}: {value!r}")
    extra = "\n".join(f"{k}: {v}" for k, v in headers.items())
    invite = _message(
        f"""INVITE sip:{extension}@[remote_ip]:[remote_port] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        From: <sip:{PHONE_USER}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
        To: <sip:{extension}@[remote_ip]:[remote_port]>
        Call-ID: [call_id]
        CSeq: 1 INVITE
        Contact: <sip:{PHONE_USER}@[local_ip]:[local_port]>
        Max-Forwards: 70
        {extra}
        Content-Type: application/sdp
        Content-Length: [len]

        {_sdp(dtmf)}"""
    )
    ack = _message(
        """ACK [next_url] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        [routes]
        [last_From:]
        [last_To:]
        Call-ID: [call_id]
        CSeq: 1 ACK
        Contact: <sip:{user}@[local_ip]:[local_port]>
        Max-Forwards: 70
        Content-Length: 0

        """.replace("{user}", PHONE_USER)
    )
    return f"""<send retrans="500"><![CDATA[
{invite}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true" rrs="true"/>
<send><![CDATA[
{ack}]]></send>"""


def _uas_opening(dtmf: DtmfMode) -> str:
    ringing = _message(
        """SIP/2.0 180 Ringing
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        [last_CSeq:]
        Content-Length: 0

        """
    )
    ok = _message(
        f"""SIP/2.0 200 OK
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        [last_CSeq:]
        Contact: <sip:{PHONE_USER}@[local_ip]:[local_port]>
        Content-Type: application/sdp
        Content-Length: [len]

        {_sdp(dtmf)}"""
    )
    return f"""{_recv_invite(rrs=True)}
<send><![CDATA[
{ringing}]]></send>
<send retrans="500"><![CDATA[
{ok}]]></send>
<recv request="ACK" rtd="true"/>"""


def _recv_invite(*, rrs: bool) -> str:
    """Receive Asterisk's INVITE, keeping its From and To for the answer."""
    record = ' rrs="true"' if rrs else ""
    return f"""<recv request="INVITE"{record}>
  <action>
    <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="theirs"/>
    <ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="to"/>
  </action>
</recv>"""


def _uas_reject(status: int) -> str:
    """Refuse Asterisk's INVITE with `status` (a phone that is busy or declines)."""
    reasons = {480: "Temporarily Unavailable", 486: "Busy Here", 603: "Decline"}
    refusal = _message(
        f"""SIP/2.0 {status} {reasons.get(status, "Refused")}
        [last_Via:]
        From: [$theirs]
        To: [$to];tag=[pid]SIPpTag01[call_number]
        [last_Call-ID:]
        [last_CSeq:]
        Content-Length: 0

        """
    )
    return f"""{_recv_invite(rrs=False)}
<send><![CDATA[
{refusal}]]></send>
<recv request="ACK"/>"""


# -- running SIPp --------------------------------------------------------------------------


def free_udp_port(pair: bool = False) -> int:
    """A UDP port free on loopback now (`pair`: an even one whose next is free too, for RTP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not pair:
            return port
        port &= ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair on loopback")


def _bound(port: int) -> bool:
    """True when something listens on UDP 127.0.0.1:`port` (reads /proc/net/udp)."""
    needle = f":{port:04X} "
    with open("/proc/net/udp", encoding="ascii") as f:
        return any(line.split()[1].endswith(needle.strip()) for line in f.readlines()[1:])


class Sipp:
    """Runs SIPp inside the sandbox root (`root`, the chroot holding Asterisk and SIPp)."""

    def __init__(
        self, root: Path, server: str = SERVER, *, keep: bool = False, prefix: Sequence[str] = ()
    ) -> None:
        self.root = root
        self.server = server
        #: A command prefix SIPp runs under: `ip netns exec NS`, a phone on another host
        #: (ivr.sandbox.netns; phones placing calls only, `answer` polls this host's sockets).
        self.prefix = tuple(prefix)
        #: Keep each run's directory (scenario, pcaps, logs) under root/tmp for debugging.
        self.keep = keep

    async def call(
        self,
        extension: str,
        steps: Sequence[Step],
        *,
        dtmf: DtmfMode = "rfc4733",
        tag: str | None = None,
        caller: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> SippResult:
        """Dial `extension` as the sandbox's SIP phone, play `steps`, return when SIPp exits.

        `tag` goes in an `X-Ivr-Test` header (the ivr-test dialplan reports it as Tag);
        `caller` in a P-Asserted-Identity, which the endpoint trusts for the caller id.
        """
        all_headers = dict(headers or {})
        if tag is not None:
            all_headers["X-Ivr-Test"] = tag
        if caller is not None:
            all_headers["P-Asserted-Identity"] = f"<sip:{caller}@127.0.0.1>"
        run = _Run(self, dtmf, uas=False, extension=extension)
        run.write(_uac_opening(extension, dtmf, all_headers), steps)
        run.start(["-m", "1", "-l", "1", self.server], timeout)
        return await run.wait(timeout)

    @contextlib.asynccontextmanager
    async def answer(
        self,
        *,
        key: str | None = "1",
        delay_ms: int = 1000,
        dtmf: DtmfMode = "rfc4733",
        steps: Sequence[Step] | None = None,
        timeout: float = 60.0,
        reject: int | None = None,
        port: int | None = None,
    ) -> AsyncIterator[Uas]:
        """An answering phone: answer, after `delay_ms` press `key` (None: never), await BYE.

        `steps` replaces the default script (`Wait(delay_ms), Keys(key), WaitBye()`). Ready to
        be called once the context is entered; killed on leaving it if still running.
        `reject`: refuse the call with this SIP status instead (486 busy, 603 declined...).
        `port`: listen on this SIP port (a phone called again at the same address).
        """
        if steps is None:
            steps = [Wait(delay_ms), *([Keys(key)] if key else []), WaitBye()]
        run = _Run(self, dtmf, uas=True)
        if port is not None:
            run.sip_port = port
        if reject is not None:
            run.write(_uas_reject(reject), [])
        else:
            run.write(_uas_opening(dtmf), steps)
        run.start(["-m", "1"], timeout)
        uas = Uas(run, timeout)
        try:
            await run.listening()
            yield uas
        finally:
            await run.stop()


class Uas:
    """A SIPp answering phone waiting for Asterisk's call."""

    def __init__(self, run: _Run, timeout: float) -> None:
        self._run = run
        self._timeout = timeout
        self.port = run.sip_port
        #: A dial template for IVR_DIAL_TEMPLATE / Caller: reaches this phone via the trunk.
        self.dial_template = f"PJSIP/{TRUNK}/sip:{{number}}@127.0.0.1:{self.port}"

    def channel(self, number: str = "1000", endpoint: str = TRUNK) -> str:
        """The dial string that reaches this phone through `endpoint`."""
        return f"PJSIP/{endpoint}/sip:{number}@127.0.0.1:{self.port}"

    async def wait(self) -> SippResult:
        """Wait for SIPp to end (the call over, or the timeout from the start)."""
        remaining = self._timeout - (time.monotonic() - self._run.started)
        return await self._run.wait(max(0.1, remaining))


class _Run:
    def __init__(self, sipp: Sipp, dtmf: DtmfMode, *, uas: bool, extension: str = "") -> None:
        self.sipp = sipp
        self.name = f"ivr-sipp-{secrets.token_hex(6)}"
        self.inside = f"/tmp/{self.name}"
        self.workdir = sipp.root / "tmp" / self.name
        self.workdir.mkdir(parents=True)
        self.script = _Script(self.workdir, self.inside, dtmf, uas, extension)
        self.sip_port = free_udp_port()
        self.rtp_port = free_udp_port(pair=True)
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.result: SippResult | None = None
        self.xml = ""

    def write(self, opening: str, steps: Sequence[Step]) -> None:
        for step in steps:
            self.script.step(step)
        self.xml = self.script.xml(opening)
        (self.workdir / "scenario.xml").write_text(self.xml, encoding="ascii")

    def start(self, extra: list[str], timeout: float) -> None:
        inside = self.inside
        self._args = [
            *self.sipp.prefix, "chroot", str(self.sipp.root), "sipp",
            "-sf", f"{inside}/scenario.xml",
            "-i", "127.0.0.1", "-p", str(self.sip_port),
            "-mi", "127.0.0.1", "-mp", str(self.rtp_port),
            # A BYE that comes during a pause would abort the call; ignored, its retransmission
            # (0.5 s, 1 s... later) meets the WaitBye that follows the pause.
            "-nostdin", "-aa", "-pause_msg_ign",
            "-trace_err", "-error_file", f"{inside}/errors.log",
            "-trace_msg", "-message_file", f"{inside}/messages.log",
            "-timeout", f"{max(1, math.ceil(timeout))}s", "-timeout_error",
            *extra,
        ]  # fmt: skip

    async def _spawn(self) -> None:
        if self.proc is None:
            self.started = time.monotonic()
            out = self._output()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self._args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
                )
            finally:
                out.close()

    async def listening(self) -> None:
        """Start SIPp and return once its SIP port is bound (so Asterisk's INVITE lands)."""
        await self._spawn()
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while not _bound(self.sip_port):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                result = await self.wait(1)
                raise RuntimeError(f"SIPp did not start listening: {result.explain()}")
            # SIPp gives no readiness signal: poll the socket table (a condition, not a delay).
            await asyncio.sleep(0.005)

    async def wait(self, timeout: float) -> SippResult:
        if self.result is not None:
            return self.result
        await self._spawn()
        assert self.proc is not None
        timed_out = False
        try:
            await asyncio.wait_for(self.proc.wait(), timeout + 5)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        code = self.proc.returncode
        errors = self._read("errors.log")
        # With -timeout_error SIPp ends its own run at the timeout, status 255, and says so.
        timed_out = timed_out or "timed out after" in errors
        self.result = SippResult(
            returncode=code,
            elapsed=time.monotonic() - self.started,
            timed_out=timed_out,
            errors=errors,
            messages=self._read("messages.log"),
            output=self._read("output.log"),
            scenario=self.xml,
        )
        if not self.sipp.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.result

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.result is None:
            await self.wait(1)

    def _output(self) -> BinaryIO:
        return open(self.workdir / "output.log", "wb")  # noqa: SIM115 (closed by the caller)

    def _read(self, name: str) -> str:
        path = self.workdir / name
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def sandbox_root() -> Path:
    """The sandbox's root directory (scripts/sandbox keeps it next to its env file)."""
    from ivr.sandbox import asterisk as sandbox

    return sandbox.env_file().parent / "root"


__all__ = [
    "Audio",
    "Cue",
    "DtmfMode",
    "Hangup",
    "Keys",
    "Sipp",
    "SippResult",
    "Step",
    "Uas",
    "Wait",
    "WaitBye",
    "free_udp_port",
    "sandbox_root",
]
