"""SMS steps through a gateway at its allowed rate: ours ÷ the rate limit.

    .venv/bin/python bench/sms.py                      # 200 SMS, 4 ports x 5 SMS/s
    .venv/bin/python bench/sms.py --count 400 --ports 8 --rate 5

A campaign (plan voice, sms) whose people all missed their call has its SMS steps due at once;
one SMS sender (`ivr.sms.messenger`, as a worker runs it) sends them as SIP MESSAGE through the
sandbox Asterisk (AMI MessageSend) to SIPp as the gateway, which answers each with 200. The
rate is measured from the campaign's own event log (each step's `sms` event), first to last,
and compared with ports x rate; SIPp's count says every message arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.campaign import store  # noqa: E402
from ivr.campaign.scheduler import Scheduler  # noqa: E402
from ivr.campaign.spec import CampaignSpec  # noqa: E402
from ivr.db import connect  # noqa: E402
from ivr.keys import campaign_key  # noqa: E402
from ivr.pbx.ami import AmiLink  # noqa: E402
from ivr.pbx.messages import SipMessages  # noqa: E402
from ivr.sandbox import asterisk as sandbox  # noqa: E402
from ivr.sandbox.redisserver import RedisServer  # noqa: E402
from ivr.sms.gateway import Gateway  # noqa: E402
from ivr.sms.messenger import Messenger  # noqa: E402
from ivr.staff.roster import Person  # noqa: E402
from tests import smsphone  # noqa: E402
from tests.sipp import Sipp, sandbox_root  # noqa: E402


async def run(count: int, ports: int, rate: float) -> None:
    config = sandbox.config()
    link = AmiLink(config.ami_host, config.ami_port, config.ami_user, config.ami_secret)
    await link.start()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=True)
        server.start()
        db = connect(server.url)
        try:
            cid = await missed(db, count)
            async with smsphone.receive(Sipp(sandbox_root()), count, timeout=600) as gw:
                gateway = Gateway("sip", SipMessages(link, gw.to_template), ports, rate)
                stop = asyncio.Event()
                started = time.monotonic()
                task = asyncio.create_task(Messenger(db, gateway, name="bench").run(stop))
                received = await gw.messages()
                stop.set()
                await task
            wall = time.monotonic() - started
            times = sorted(
                int(f["t"])
                for _, f in await db.xrange(campaign_key(cid, "events"))
                if f.get("type") == "sms" and f.get("result") == "sent"
            )
        finally:
            await db.aclose()
            server.stop()
    await link.close()
    measured = (len(times) - 1) / ((times[-1] - times[0]) / 1000)
    allowed = ports * rate
    print(f"{len(times)} SMS sent, {len(received)} received by the gateway, wall {wall:.1f} s")
    print(
        f"rate: {measured:.2f} SMS/s measured, {allowed:.2f} allowed ({ports} ports x {rate}/s): "
        f"ratio {measured / allowed:.3f}"
    )


async def missed(db: Redis, count: int) -> str:
    """A campaign whose `count` people all missed their call: their SMS steps are due."""
    people = [
        Person(f"p{i}", f"Staff {i}", "nurse", "", (f"2{i:05d}",), sms=f"06{i:08d}")
        for i in range(count)
    ]
    spec = CampaignSpec(messages={"fr": "Plan blanc."}, plan=("voice", "sms"), retry_delay=0)
    cid = await store.create(db, spec, people, sms=True)
    s = Scheduler(db)
    while c := await s.claim(cid, store.now_ms(), lease_ms=60_000, worker="w", asterisk="a"):
        await s.finish(cid, c.pid, c.attempt, "no_answer", store.now_ms(), worker="w",
                       number=c.number, detail="")  # fmt: skip
        await s.release(cid, c.pid, c.attempt, "w")
    return cid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--ports", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="SMS per second per port")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.ports, args.rate))


if __name__ == "__main__":
    main()
