"""SMS beside voice: the SMS leave at the gateway's rate and the voice lines stay as busy.

    .venv/bin/python bench/smsvoice.py              # 2,000 staff, 100 channels, 4 x 2.5 SMS/s
    .venv/bin/python bench/smsvoice.py --staff 400 --channels 40

Two campaigns over the same staff, one after the other in this one run, each on its own private
redis-server and its own dialer worker (`capacity` channels) on the sandbox Asterisk:

- sms: the default plan (voice, sms, voice), with the worker's SMS sender on the same event loop
  and the same AMI link, as `ivr worker` runs them: SIP MESSAGE (AMI MessageSend) through the
  sandbox Asterisk to SIPp as the gateway (`ports` x `rate` SMS/s allowed);
- voice: the same plan without its SMS step (voice, voice).

Half the staff answer their first call (simulated phones `1071...`: answer, press 1); the
other half miss it, half of them by letting it ring (`2...`, to the ring timeout), half busy
(`3...`). Those get an SMS (sms run) and a second call, which they miss again.

Measured:

- SMS rate = (SMS sent - 1) / (last send - first send), from the campaign's `sms` events (one
  per SMS, when the gateway accepted it), and its ratio to the allowed rate (`ports * rate`).
  The bench samples the SMS queue every 0.1 s (steps due, not yet claimed): it prints the share
  of that span in which the queue was non-empty, and the rate over those sample intervals alone
  (SMS sent in an interval that began with steps due / the length of such intervals): the
  gateway's pace while it always had something to send.
- Voice-line utilisation = busy channel-seconds / (capacity x wall time), over the voice phase:
  from the campaign's creation to the moment the last person's first call was placed. In that
  phase people are still waiting for their first call, so the dialer has work for every line in
  both runs; a call holds a channel from its Originate to its hangup (`Caller.call`), clipped to
  the phase. The ratio sms / voice is the cost of sending SMS on the voice lines (goal: within
  1 %). After that phase the two plans differ on purpose (the second calls of the sms run wait
  for their SMS), so the whole campaign's utilisation is printed for information only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.campaign import plan as plans  # noqa: E402
from ivr.campaign import store  # noqa: E402
from ivr.campaign.spec import CampaignSpec  # noqa: E402
from ivr.config import Config  # noqa: E402
from ivr.db import connect  # noqa: E402
from ivr.dialer.alerter import Alerter  # noqa: E402
from ivr.dialer.worker import DialerWorker, WorkerSettings  # noqa: E402
from ivr.keys import campaign_key, sms_due_part  # noqa: E402
from ivr.pbx.calls import CallRequest, CallResult  # noqa: E402
from ivr.sandbox import asterisk as sandbox  # noqa: E402
from ivr.sandbox.redisserver import RedisServer  # noqa: E402
from ivr.sms import service as sms  # noqa: E402
from ivr.staff.roster import Person  # noqa: E402
from tests import smsphone  # noqa: E402
from tests.sipp import Sipp, sandbox_root  # noqa: E402

MESSAGE = "Test de charge, SMS et voix."
#: Seconds between two samples of the SMS queue (a measurement, not a synchronisation).
SAMPLE = 0.1


def staff(count: int) -> list[Person]:
    """Even: answer and press 1; odd: no answer (i % 4 == 1) or busy (i % 4 == 3)."""
    people = []
    for i in range(count):
        number = {0: f"1071{i:06d}", 1: f"2{i:06d}", 2: f"1071{i:06d}", 3: f"3{i:06d}"}[i % 4]
        people.append(
            Person(f"B{i:06d}", f"Staff {i}", "nurse", "bench", (number,), sms=f"06{i:08d}")
        )
    return people


@dataclass
class Calls:
    """Every call's [start, end] (wall clock, seconds), and each number's first start."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    first: dict[str, float] = field(default_factory=dict)

    def utilisation(self, channels: int, start: float, end: float) -> float:
        busy = sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.spans)
        return busy / (channels * (end - start))


@contextlib.asynccontextmanager
async def gateway(config: Config, sms_count: int, ports: int, rate: float) -> AsyncIterator[Any]:
    """SIPp as the gateway, and the configuration that sends through it."""
    async with smsphone.receive(Sipp(sandbox_root()), sms_count, timeout=1800) as gw:
        yield gw, replace(config, sms_sip_to=gw.to_template, sms_sip_ports=ports,
                          sms_sip_rate=rate)  # fmt: skip


async def campaign(
    config: Config, people: list[Person], channels: int, spec: CampaignSpec, sms_on: bool
) -> dict[str, Any]:
    """One campaign on a private redis-server; its calls, SMS and queue samples."""
    calls = Calls()
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=True)
        server.start()
        db = connect(server.url)
        try:
            async with Alerter(replace(config, redis_url=server.url)) as alerter:
                await alerter.message(MESSAGE, "fr")
                await alerter.prompts("fr")
                real_call = alerter.caller.call

                async def timed(request: CallRequest, on_outcome: Any = None) -> CallResult:
                    start = time.time()
                    calls.first.setdefault(request.number, start)
                    try:
                        return await real_call(request, on_outcome)
                    finally:
                        calls.spans.append((start, time.time()))

                alerter.caller.call = timed  # type: ignore[method-assign]
                stop = asyncio.Event()
                worker = DialerWorker(
                    alerter, db, WorkerSettings(name="bench", capacity=channels, lease=120)
                )
                tasks = [asyncio.create_task(worker.run(stop))]
                async with contextlib.AsyncExitStack() as stack:
                    if sms_on:
                        service = await stack.enter_async_context(
                            sms.configured(config, alerter.link, db)
                        )
                        tasks.append(asyncio.create_task(service.run("bench", stop)))
                    await asyncio.sleep(0.2)  # let the worker reach its idle wait, as in service
                    t0 = time.time()
                    cid = await store.create(db, spec, people, sms=sms_on)
                    await until_done(db, cid, worker, samples)
                    t_end = time.time()
                    stop.set()
                    await asyncio.gather(*tasks)
                events = [f for _, f in await db.xrange(campaign_key(cid, "events"))]
        finally:
            await db.aclose()
            server.stop()
    sent = sorted(
        int(f["t"]) / 1000 for f in events if f.get("type") == "sms" and f["result"] == "sent"
    )
    available = sum(1 for f in events if f.get("type") == "final" and f["outcome"] == "available")
    phase_end = max(calls.first.values())
    return {
        "calls": len(calls.spans),
        "available": available,
        "sms": sent,
        "samples": samples,
        "wall_s": t_end - t0,
        "voice_phase_s": phase_end - t0,
        "utilisation": calls.utilisation(channels, t0, phase_end),
        "utilisation_whole": calls.utilisation(channels, t0, max(b for _, b in calls.spans)),
    }


async def until_done(
    db: Any, cid: str, worker: DialerWorker, samples: list[tuple[float, int]]
) -> None:
    """Sample the SMS steps due (not yet claimed) until the campaign is over."""
    due = campaign_key(cid, sms_due_part)
    while True:
        now = time.time()
        samples.append((now, int(await db.zcount(due, "-inf", int(now * 1000)))))
        status = await db.hget(campaign_key(cid), "status")
        leases = int(await db.zcard(campaign_key(cid, "leases")))
        if status in ("done", "stopped") and leases == 0 and worker.in_flight == 0:
            return
        await asyncio.sleep(SAMPLE)


def sms_rate(run: dict[str, Any]) -> tuple[float, float, float]:
    """SMS/s from the first send to the last; the share of that span the queue had steps due
    (by its samples); SMS/s over those non-empty sample intervals alone."""
    sent, samples = run["sms"], run["samples"]
    times = [t for t, _ in samples]
    span = [(a, b, n) for (a, n), (b, _) in pairwise(samples) if sent[0] <= a < sent[-1]]
    busy = sum(b - a for a, b, n in span if n)
    # The sample interval each SMS fell in: did it begin with steps due?
    during = sum(1 for t in sent if samples[max(bisect_right(times, t) - 1, 0)][1])
    return (
        (len(sent) - 1) / (sent[-1] - sent[0]),
        busy / sum(b - a for a, b, _ in span),
        during / busy,
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--ports", type=int, default=4, help="ports of the SMS gateway")
    parser.add_argument("--rate", type=float, default=2.5, help="SMS per second per port")
    parser.add_argument("--ring-timeout", type=int, default=6)
    parser.add_argument("--interval", type=int, default=5, help="seconds between plan steps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sandbox.start()
    config = sandbox.config()
    people = staff(args.staff)
    missed = sum(1 for p in people if not p.phones[0].startswith("1"))
    spec = CampaignSpec(
        messages={"fr": MESSAGE}, ring_timeout=args.ring_timeout, retry_delay=args.interval,
        amd=False, ask_eta=False, escalate=False, plan=plans.DEFAULT,
    )  # fmt: skip
    async with gateway(config, missed, args.ports, args.rate) as (gw, sms_config):
        with_sms = await campaign(sms_config, people, args.channels, spec, True)
        received = len(await gw.messages())
    voice_spec = replace(spec, plan=plans.without_sms(spec.plan))
    voice = await campaign(config, people, args.channels, voice_spec, False)
    async with Alerter(config) as alerter:
        await alerter.link.action({"Action": "DBDelTree", "Family": "ivr"})
    rate, backlog, backlogged_rate = sms_rate(with_sms)
    allowed = args.ports * args.rate
    ratio = with_sms["utilisation"] / voice["utilisation"]
    result = {
        "staff": args.staff, "channels": args.channels, "missed": missed,
        "sms_sent": len(with_sms["sms"]), "sms_received_by_gateway": received,
        "sms_rate": rate, "sms_allowed": allowed, "sms_rate_ratio": rate / allowed,
        "sms_queue_nonempty_share": backlog, "sms_rate_while_nonempty": backlogged_rate,
        "utilisation_ratio": ratio,
        **{f"{name}_{k}": v for name, run in (("sms", with_sms), ("voice", voice))
           for k, v in run.items() if k not in ("sms", "samples")},
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.staff} staff ({missed} miss their calls) on {args.channels} channels")
    print(
        f"  SMS: {len(with_sms['sms'])} sent, {received} received by the gateway; "
        f"{rate:.3f} SMS/s, allowed {allowed:g} ({args.ports} ports x {args.rate:g}/s): "
        f"ratio {rate / allowed:.3f}; the queue had SMS due {backlog:.1%} of that time, "
        f"{backlogged_rate:.3f} SMS/s then: ratio {backlogged_rate / allowed:.3f}"
    )
    for name, run in (("voice, sms, voice", with_sms), ("voice, voice", voice)):
        print(
            f"  {name}: {run['calls']} calls, {run['available']} available, wall "
            f"{run['wall_s']:.1f} s; voice phase {run['voice_phase_s']:.1f} s, utilisation "
            f"{run['utilisation']:.4f} (whole campaign {run['utilisation_whole']:.4f})"
        )
    print(f"  utilisation with SMS / voice only: {ratio:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
