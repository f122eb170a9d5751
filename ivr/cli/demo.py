"""`ivr demo`: the main job on the embedded default.

Starts the sandbox Asterisk and a private redis-server (append-only on), imports a roster of a
few hundred simulated staff of several roles whose phones behave in every way the service must
handle (ivr/dialplans/ivr-sim.conf), starts a campaign with quotas and the plan voice, SMS,
voice, runs dialer workers and an SMS sender in this process (the SMS go over SMPP to a
simulated GSM gateway whose phones reply, `ivr.sandbox.smsc`: some staff answer only by SMS)
with a live progress line, and prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis

from ivr.campaign import store
from ivr.campaign.report import Report, report_html
from ivr.campaign.spec import CampaignSpec
from ivr.cli import progress
from ivr.cli.common import Commands, print_json, redis_for
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.outcomes import Outcome
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from ivr.sandbox.smsc import SimulatedGateway
from ivr.sms import service as sms
from ivr.staff.roster import Person, RosterStore


def register(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo", help="call simulated staff through the sandbox Asterisk and print the outcomes"
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument(
        "--html",
        metavar="FILE",
        default=DEFAULT_HTML,
        help="where to write the after-action report (default %(default)s; '-' for none)",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    html = None if args.html == "-" else Path(args.html)
    return asyncio.run(run_demo(as_json=args.json, html=html))


#: Where `ivr demo` writes the after-action report (current directory).
DEFAULT_HTML = "ivr-demo-report.html"
MESSAGE = "Alerte plan blanc. Afflux massif de victimes. Nous avons besoin de renforts."
MESSAGE_EN = "White plan alert at the hospital. Mass casualties. We need reinforcements."

#: (role, how many, quota or None)
ROLES = (("nurse", 140, 25), ("doctor", 50, None), ("anaesthetist", 20, 4),
         ("orderly", 40, None), ("midwife", 20, None))  # fmt: skip

#: Phone behaviours (ivr-sim numbering) and their weights in the demo roster.
BEHAVIOURS = (
    ("1{a}1", 34),  # answers after a s, presses 1
    ("1{a}6{eta}", 10),  # presses 1, then keys minutes to arrival
    ("1{a}2", 16),  # presses 2
    ("1{a}3", 3),  # star (repeat), then 1
    ("2", 10),  # never answers
    ("3", 6),  # busy
    ("4{a}", 4),  # hangs up during the message
    ("6{a}", 6),  # answering machine
    ("5", 3),  # congestion
    ("1{a}0", 2),  # answers, never presses a key
)


def demo_roster(seed: int = 7) -> list[Person]:
    """A few hundred simulated staff; some with a second number, some with a backup."""
    rng = random.Random(seed)
    patterns = [p for p, w in BEHAVIOURS for _ in range(w)]
    people: list[Person] = []
    serial = 0
    for role, count, _ in ROLES:
        for i in range(count):
            serial += 1

            phones = [_number(rng, rng.choice(patterns), serial)]
            if rng.random() < 0.25:
                phones.append(_number(rng, rng.choice(patterns), serial))
            people.append(
                Person(
                    sms=f"06{serial:08d}",
                    id=f"S{serial:04d}",
                    name=f"{role.title()} {i + 1}",
                    role=role,
                    unit=rng.choice(("urgences", "réanimation", "bloc", "pédiatrie")),
                    phones=tuple(phones),
                    language="en" if rng.random() < 0.1 else "fr",
                    on_call=rng.random() < 0.15,
                    backup=None,
                    tags=frozenset(),
                )
            )
    # A backup for some: called if the person cannot be reached.
    for i in range(0, len(people) - 1, 9):
        people[i] = replace(people[i], backup=people[i + 1].id)
    return people


def sms_replies(people: list[Person]) -> dict[str, str]:
    """What the simulated phones reply to an SMS: of those calls cannot reach (no answer, busy,
    congestion, answering machine), two in three answer by SMS, most "1" with minutes."""
    unreachable = [p for p in people if all(n[0] in "2356" for n in p.phones)]
    replies = {}
    for n, person in enumerate(unreachable):
        if n % 3 != 2 and person.sms:
            replies[person.sms] = ("1 30", "oui", "2", "1 45")[n % 4]
    return replies


def _number(rng: random.Random, pattern: str, serial: int) -> str:
    eta = rng.choice(("15", "30", "45", "60", "90"))
    return f"{pattern.format(a=rng.choice('0112'), eta=eta)}{serial:05d}"


async def run_demo(
    *, as_json: bool = False, channels: int = 100, html: Path | None = Path(DEFAULT_HTML)
) -> int:
    """Run the demo; exit code 0 when the campaign completes with every person accounted for.

    The after-action report (one self-contained page, mobilisation curve included) is written
    to `html` unless it is None."""
    sandbox.start()
    config = sandbox.config(IVR_RING_TIMEOUT="6", IVR_MAX_CHANNELS=str(channels))
    people = demo_roster()
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as tmp, RedisServer(Path(tmp)) as server:
        config = replace(config, redis_url=server.url, redis_sentinels=())
        async with redis_for(config) as db:
            await RosterStore(db).replace(people)
            spec = CampaignSpec(
                messages={"fr": MESSAGE, "en": MESSAGE_EN},
                name="demo plan blanc",
                quotas={role: q for role, _, q in ROLES if q},
                ring_timeout=6,
                # Call, SMS to whoever the call missed, call again.
                plan=("voice", "sms", "voice"),
                retry_delay=3,
                callback_number="0123456789",
                key_wait=3,
                max_tries=1,
            )
            report = await _run(config, db, spec, people, as_json)
            if html is not None:
                page = await report_html(db, report["campaign"])
                where = await asyncio.to_thread(_write, html, page)
                print(f"after-action report: {where}", file=sys.stderr)
    accounted = sum(report[o] for o in Outcome) == report["total"]
    if as_json:
        print_json(report)
    else:
        print(_summary(report))
    return 0 if accounted and report["status"] == "done" else 1


async def _run(
    config: Config, db: aioredis.Redis, spec: CampaignSpec, people: list[Person], as_json: bool
) -> Report:
    stop = asyncio.Event()
    gateway = SimulatedGateway(sms_replies(people))
    await gateway.start()
    config = replace(
        config, sms_smpp_host="127.0.0.1", sms_smpp_port=gateway.port,
        sms_smpp_system_id="demo", sms_smpp_ports=4, sms_smpp_rate=25,
    )  # fmt: skip
    try:
        async with Alerter(config) as alerter, sms.configured(config, alerter.link, db) as texts:
            # Render the audio before the clock starts: a real service renders it at start-up.
            for language, text in spec.messages.items():
                await alerter.message(text, language)
                await alerter.prompts(language)
            worker = DialerWorker(
                alerter, db, WorkerSettings(name="demo-0", capacity=config.max_channels)
            )
            running = [asyncio.create_task(worker.run(stop)), asyncio.create_task(
                texts.run("demo-0", stop))]  # fmt: skip
            started = time.monotonic()
            cid = await store.create(db, spec, people, sms=config.sms_ready)
            if not as_json:
                print(f"campaign {cid}: {len(people)} staff, {config.max_channels} channels")
            out = sys.stderr if as_json else sys.stdout
            report = await progress.follow(db, cid, out=out)
            report["wall_seconds"] = round(time.monotonic() - started, 1)
            stop.set()
            await asyncio.gather(*running)
    finally:
        await gateway.stop()
    return report


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def _summary(report: Report) -> str:
    lines = [
        f"campaign {report['campaign']} {report['status']} in {report['wall_seconds']} s: "
        f"{report['total']} staff, {report['attempts']} calls"
    ]
    for outcome in (*Outcome, "pending"):
        lines.append(f"  {outcome:12} {report[outcome]}")
    for role, entry in report["by_role"].items():
        quota = (
            f", quota {entry['quota']} {'met' if entry['met'] else 'NOT met'}"
            if entry["quota"]
            else ""
        )
        lines.append(f"  {role:13} {entry['available']:3} available of {entry['total']}{quota}")
    texts = report["sms"]
    lines.append(
        f"  SMS: {texts['sent']} sent, {texts['delivered']} delivered, "
        f"{texts['answered']} answered by SMS"
    )
    lines.append(f"  expected arrivals: {report['forecast']}")
    return "\n".join(lines)
