"""`ivr campaign start|status|stop|report`: start, follow, stop and report call-out campaigns."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from ivr import limits
from ivr.campaign import plan as plans
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.estimate import estimate
from ivr.campaign.report import Report
from ivr.campaign.spec import CampaignError, CampaignSpec, select
from ivr.cli import progress
from ivr.cli.common import Commands, print_json, redis_for
from ivr.config import Config, load_config
from ivr.errors import ConfigError, InputError
from ivr.outcomes import Outcome
from ivr.sms import texts
from ivr.sms.encoding import segments
from ivr.staff.roster import Person, RosterStore
from ivr.voice.tts import Speaker
from ivr.voice.wav import wav_duration


def register(commands: Commands) -> None:
    campaign = commands.add_parser(
        "campaign", help="start, follow, stop and report call-out campaigns"
    )
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    _register_start(sub)
    status = sub.add_parser("status", help="show a campaign's progress")
    status.add_argument("id", nargs="?", help="campaign id (default: the latest)")
    status.add_argument("--follow", "-f", action="store_true", help="live until the end")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=lambda args: asyncio.run(show_status(args)))
    stop = sub.add_parser("stop", help="stop calling (calls in progress finish)")
    stop.add_argument("id")
    stop.set_defaults(func=lambda args: asyncio.run(stop_campaign(args)))
    report = sub.add_parser("report", help="the campaign report")
    report.add_argument("id", nargs="?", help="campaign id (default: the latest)")
    fmt = report.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true", help="one row per person, every attempt")
    fmt.add_argument(
        "--html",
        nargs="?",
        const="-",
        metavar="FILE",
        help="the after-action report as one self-contained HTML page (to FILE, or stdout)",
    )
    report.set_defaults(func=lambda args: asyncio.run(show_report(args)))


def _register_start(sub: Commands) -> None:
    start = sub.add_parser("start", help="start a campaign (the workers place the calls)")
    start.add_argument("--message", "-m", default="", help="the alert text (French)")
    start.add_argument("--message-en", help="the alert text for English-speaking staff")
    start.add_argument("--audio", type=Path, help="a recorded message (French), any audio file")
    start.add_argument("--audio-en", type=Path, help="a recorded message for English speakers")
    start.add_argument("--name", default="plan blanc", help="a name for the reports")
    start.add_argument("--role", action="append", default=[], help="target role (repeatable)")
    start.add_argument("--unit", action="append", default=[], help="target unit (repeatable)")
    start.add_argument(
        "--quota", action="append", default=[], metavar="ROLE=N", help="needed per role"
    )
    start.add_argument("--drill", action="store_true", help="an exercise: said before and after")
    start.add_argument(
        "--ring-timeout",
        type=limits.RING_TIMEOUT.option("--ring-timeout"),
        help=f"seconds to ring, {limits.RING_TIMEOUT.describe()} (IVR_RING_TIMEOUT)",
    )
    start.add_argument(
        "--attempts",
        type=limits.ATTEMPTS.option("--attempts"),
        default=3,
        help=f"rounds over each person's numbers, {limits.ATTEMPTS.describe()}",
    )
    start.add_argument(
        "--retry-delay",
        type=limits.RETRY_DELAY.option("--retry-delay"),
        default=300,
        help=f"seconds between rounds (the plan's steps), {limits.RETRY_DELAY.describe()}",
    )
    start.add_argument(
        "--plan",
        type=_plan,
        help="delivery plan: steps voice, sms, voice+sms in order, such as voice,sms,voice "
        "(default with IVR_SMS_SIP_TO set: voice,sms,voice; else --attempts voice rounds)",
    )
    start.add_argument("--no-escalate", action="store_true", help="do not call backups")
    start.add_argument("--no-amd", action="store_true", help="no answering-machine detection")
    start.add_argument("--no-eta", action="store_true", help="do not ask minutes to arrival")
    start.add_argument("--callback", default="", help="number left on answering machines")
    start.add_argument("--estimate", action="store_true", help="print the estimate, start nothing")
    start.add_argument(
        "--lines",
        type=limits.LINES.option("--lines"),
        help="lines for --estimate (IVR_MAX_CHANNELS)",
    )
    start.add_argument("--wait", action="store_true", help="follow the progress until the end")
    start.add_argument("--json", action="store_true")
    start.set_defaults(func=lambda args: asyncio.run(start_campaign(args)))


def _plan(text: str) -> tuple[str, ...]:
    try:
        return plans.parse(text)
    except plans.PlanError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def spec_of(args: argparse.Namespace, ring_timeout: int) -> CampaignSpec:
    """The campaign the command line asks for (recordings are added once imported)."""
    quotas: dict[str, int] = {}
    for item in args.quota:
        role, sep, number = item.partition("=")
        if not sep or not number.strip().isdigit():
            raise CampaignError(f"--quota {item!r}: expected ROLE=N, for example nurse=10")
        quotas[role.strip().lower()] = int(number)
    messages = {"fr": args.message} if args.message else {}
    if args.message_en:
        messages["en"] = args.message_en
    return CampaignSpec(
        messages=messages,
        name=args.name,
        roles=tuple(r.lower() for r in args.role),
        units=tuple(args.unit),
        quotas=quotas,
        drill=args.drill,
        ring_timeout=args.ring_timeout or ring_timeout,
        attempts=args.attempts,
        retry_delay=args.retry_delay,
        escalate=not args.no_escalate,
        amd=not args.no_amd,
        ask_eta=not args.no_eta,
        callback_number=args.callback,
        plan=args.plan or (),
    )


async def start_campaign(args: argparse.Namespace) -> int:
    config = load_config(require_ami_credentials=False)
    spec = spec_of(args, config.ring_timeout)
    spec.check_sms(config.sms_ready)
    spec = spec.with_default_plan(config.sms_ready)
    recordings = await _import_recordings(args, config)
    if recordings:
        spec = dataclasses.replace(spec, recordings=recordings)
    spec.validate()
    async with redis_for(config) as db:
        people = await RosterStore(db).load()
        if not people:
            raise CampaignError("campaign: the roster is empty; ivr roster import")
        if args.estimate:
            return await _estimate(spec, people, args.lines or config.max_channels, config)
        started = time.monotonic()
        cid = await store.create(db, spec, people, sms=config.sms_ready)
        report = await reports.report(db, cid)
        if not args.json:
            print(
                f"campaign {cid} started: {report['total']} staff to call "
                f"({(time.monotonic() - started) * 1000:.0f} ms)"
            )
        if args.wait:
            # With --json, standard output is the JSON document alone: progress goes to stderr.
            report = await progress.follow(db, cid, sys.stderr if args.json else sys.stdout)
        if args.json:
            print_json(report)
    return 0


async def _import_recordings(args: argparse.Namespace, config: Config) -> dict[str, str]:
    """Convert recorded messages into IVR_AUDIO_DIR, which the workers' Asterisk reads."""
    sources = {lang: path for lang, path in (("fr", args.audio), ("en", args.audio_en)) if path}
    if not sources:
        return {}
    for option, path in zip(("--audio", "--audio-en"), (args.audio, args.audio_en), strict=True):
        if path is not None and not path.is_file():
            raise InputError(f"{option}: {path} is not a file that can be read")
    out: dict[str, str] = {}
    async with Speaker(config.audio_dir, rate=config.tts_rate) as speaker:
        for language, source in sources.items():
            imported = await speaker.import_audio(source)
            out[language] = str(imported.relative_to(config.audio_dir))
    return out


async def _estimate(spec: CampaignSpec, people: list[Person], lines: int, config: Config) -> int:
    targets = select(people, spec)
    async with Speaker(config.audio_dir, rate=config.tts_rate) as speaker:
        if "fr" in spec.recordings:
            seconds = wav_duration(config.audio_dir / spec.recordings["fr"])
        else:
            language, text = next(iter(spec.messages.items()))
            seconds = wav_duration(await speaker.render(text, language))
    plan = estimate(
        Counter(p.role for p in targets),
        spec.quotas,
        lines=lines,
        message_seconds=seconds,
        ring_timeout=spec.ring_timeout,
    )
    print(f"message: {seconds:.0f} s; targets: {len(targets)} staff")
    print("\n".join(plan.lines_text()))
    print("assumed: 60% of calls answered, 60% of those available; retries not counted")
    if plans.uses_sms(spec.steps()):
        print("\n".join(sms_estimate(spec, targets)))
    return 0


def sms_estimate(spec: CampaignSpec, targets: list[Person]) -> list[str]:
    """What the plan's SMS steps will send: who can get one, and how many SMS each text takes
    (GSM 03.38 or UCS-2, concatenated)."""
    reachable = sum(1 for p in targets if p.sms_number())
    out = [
        f"plan: {plans.text(spec.steps())}, {spec.retry_delay} s apart; "
        f"{reachable} of {len(targets)} staff have a number for SMS"
    ]
    for language in sorted({p.language for p in targets} or {"fr"}):
        kind, count = segments(texts.alert(spec, language))
        out.append(f"SMS text ({language}): {count} SMS each ({kind.upper()})")
    return out


async def _campaign_id(db: Redis, given: str | None) -> str:
    found = given or await store.latest(db)
    if found is None:
        raise CampaignError("no campaign yet")
    return found


async def show_status(args: argparse.Namespace) -> int:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        cid = await _campaign_id(db, args.id)
        out = sys.stderr if args.json else sys.stdout
        report = await (progress.follow(db, cid, out) if args.follow else reports.report(db, cid))
        if args.json:
            print_json(report)
        elif not args.follow:
            progress.print_status(cid, report)
    return 0


async def stop_campaign(args: argparse.Namespace) -> int:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        cid = await _campaign_id(db, args.id)
        print(f"campaign {cid}: {await store.stop(db, cid)}")
    return 0


async def show_report(args: argparse.Namespace) -> int:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        cid = await _campaign_id(db, args.id)
        if args.html is not None:
            await _write_html(await reports.report_html(db, cid), args.html, cid)
        elif args.csv:
            sys.stdout.write(await reports.attempts_csv(db, cid))
        elif args.json:
            print_json(await reports.report(db, cid))
        else:
            print(report_text(await reports.report(db, cid)))
    return 0


async def _write_html(html: str, target: str, cid: str) -> None:
    if target == "-":
        sys.stdout.write(html)
        return
    try:
        await asyncio.to_thread(Path(target).write_text, html, "utf-8")
    except OSError as exc:
        raise ConfigError(f"--html: cannot write {target}: {exc}") from None
    print(f"campaign {cid}: report written to {target}", file=sys.stderr)


def report_text(report: Report) -> str:
    """The report as a few lines of text for the terminal."""
    kind = "DRILL" if report["drill"] else "ALERT"
    lines = [f"campaign {report['campaign']} ({kind}, {report['status']}): {report['total']} staff"]
    for key in (*Outcome, "pending"):
        lines.append(f"  {key:12} {report[key]}")
    for role, entry in report["by_role"].items():
        quota = f" quota {entry['quota']}{' met' if entry['met'] else ''}" if entry["quota"] else ""
        lines.append(f"  {role}: {entry['available']} available of {entry['total']}{quota}")
    lines.append(f"  expected arrivals: {report['forecast']}")
    plan = report.get("plan") or ["voice"]
    lines.append(f"  plan: {' -> '.join(plan)}, {report.get('attempts', 0)} call(s) placed")
    sms = report.get("sms") or {}
    if plans.uses_sms(plan) or any(sms.values()):
        lines.append("  SMS: " + ", ".join(f"{k} {v}" for k, v in sms.items()))
    mail = report.get("mail") or {}
    if any(mail.values()):
        lines.append("  mail: " + ", ".join(f"{k} {v}" for k, v in mail.items()))
    return "\n".join(lines)
