"""The `ivr` command line. Errors become one clear line on stderr and a non-zero exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from ivr import __version__
from ivr.config import LANGUAGES, load_config
from ivr.errors import IvrError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Crisis call-out server for hospitals (plan blanc)."
    )
    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    call = sub.add_parser("call", help="place one alert call and print its outcome")
    call.add_argument("number", help="the number to call (digits, leading +, * and #)")
    call.add_argument("--message", "-m", required=True, help="the alert text to speak")
    call.add_argument("--language", choices=LANGUAGES, help="spoken language (IVR_LANGUAGE)")
    call.add_argument("--ring-timeout", type=int, help="seconds to ring (IVR_RING_TIMEOUT)")
    call.add_argument("--json", action="store_true", help="print the result as JSON")

    demo = sub.add_parser(
        "demo", help="call simulated staff through the sandbox Asterisk and print the outcomes"
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument(
        "--html",
        metavar="FILE",
        default="ivr-demo-report.html",
        help="where to write the after-action report (default %(default)s; '-' for none)",
    )

    sandbox = sub.add_parser("sandbox", help="start, stop or query the sandbox Asterisk")
    sandbox.add_argument("action", choices=("start", "stop", "restart", "status", "env"))

    sub.add_parser("config", help="check the configuration and print it (secrets hidden)")
    selftest = sub.add_parser(
        "selftest", help="call each route's test phone and check its key press comes back"
    )
    selftest.add_argument("targets", nargs="*", help="dial strings (default IVR_SELFTEST_TARGETS)")
    selftest.add_argument("--key-wait", type=int, default=8, help="seconds to wait for the key")
    selftest.add_argument("--json", action="store_true", help="print the results as JSON")
    prompts = sub.add_parser("prompts", help="render the fixed voice prompts (IVR_AUDIO_DIR)")
    build = prompts.add_subparsers(dest="prompts_command", required=True).add_parser(
        "build", help="render every fixed prompt with the offline TTS; unchanged files stay"
    )
    build.add_argument("--lang", choices=(*LANGUAGES, "all"), default="all")

    roster = sub.add_parser("roster", help="import or export the staff roster").add_subparsers(
        dest="roster_command", required=True
    )
    imp = roster.add_parser("import", help="replace the roster with a CSV file (all or nothing)")
    imp.add_argument("file", help="CSV as HR exports it (UTF-8, ';' or ',')")
    exp = roster.add_parser("export", help="write the roster as CSV")
    exp.add_argument("file", nargs="?", help="output file (default: standard output)")

    camp = sub.add_parser("campaign", help="start, follow, stop and report call-out campaigns")
    csub = camp.add_subparsers(dest="campaign_command", required=True)
    start = csub.add_parser("start", help="start a campaign (the workers place the calls)")
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
    start.add_argument("--ring-timeout", type=int, help="seconds to ring (IVR_RING_TIMEOUT)")
    start.add_argument("--attempts", type=int, default=3, help="rounds over each person's numbers")
    start.add_argument("--retry-delay", type=int, default=300, help="seconds between rounds")
    start.add_argument("--no-escalate", action="store_true", help="do not call backups")
    start.add_argument("--no-amd", action="store_true", help="no answering-machine detection")
    start.add_argument("--no-eta", action="store_true", help="do not ask minutes to arrival")
    start.add_argument("--callback", default="", help="number left on answering machines")
    start.add_argument("--estimate", action="store_true", help="print the estimate, start nothing")
    start.add_argument("--lines", type=int, help="lines for --estimate (IVR_MAX_CHANNELS)")
    start.add_argument("--wait", action="store_true", help="follow the progress until the end")
    start.add_argument("--json", action="store_true")
    status = csub.add_parser("status", help="show a campaign's progress")
    status.add_argument("id", nargs="?", help="campaign id (default: the latest)")
    status.add_argument("--follow", "-f", action="store_true", help="live until the end")
    status.add_argument("--json", action="store_true")
    stop = csub.add_parser("stop", help="stop calling (calls in progress finish)")
    stop.add_argument("id")
    report = csub.add_parser("report", help="the campaign report")
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

    sub.add_parser("serve", help="serve the console and its API (IVR_HTTP_HOST, IVR_HTTP_PORT)")
    token = sub.add_parser("token", help="create, list or revoke API tokens")
    tsub = token.add_subparsers(dest="token_command", required=True)
    tcreate = tsub.add_parser("create", help="create a token (printed once, stored hashed)")
    tcreate.add_argument("name", help="who uses it (an operator, an integration)")
    tcreate.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    tsub.add_parser("list", help="the live tokens (names and roles, never the secrets)")
    trevoke = tsub.add_parser("revoke", help="revoke a token at once")
    trevoke.add_argument("name")

    pin = sub.add_parser("pin", help="set, remove or list the PINs of the phone lines")
    psub = pin.add_subparsers(dest="pin_command", required=True)
    pset = psub.add_parser("set", help="give a person a PIN (drawn at random unless --stdin)")
    pset.add_argument("person", help="staff id in the roster")
    pset.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    psub.add_parser("remove", help="remove a person's PIN").add_argument("person")
    psub.add_parser("list", help="who has a PIN (never the PINs)")

    worker = sub.add_parser("worker", help="run dialer workers on the configured Asterisk")
    worker.add_argument("--name", help="worker name, stable across restarts")
    worker.add_argument("--asterisk", default="default", help="name of this Asterisk")
    worker.add_argument("--capacity", type=int, help="channels (IVR_MAX_CHANNELS)")
    worker.add_argument("--cps", type=float, default=0.0, help="most new calls per second")
    worker.add_argument(
        "--no-lines", action="store_true", help="do not serve the phone lines (FastAGI)"
    )
    return parser


def _redis(url: str) -> Any:
    from ivr.db import connect

    return connect(url)


def _roster(args: argparse.Namespace) -> int:
    """Files are read and written here, outside the event loop."""
    data = None
    if args.roster_command == "import":
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise IvrError(f"roster: cannot read {args.file}: {exc.strerror}") from exc
    text = asyncio.run(_roster_redis(args, data))
    if args.roster_command == "export":
        if args.file:
            Path(args.file).write_text(text, encoding="utf-8", newline="")
        else:
            sys.stdout.write(text)
    return 0


async def _roster_redis(args: argparse.Namespace, data: bytes | None) -> str:
    from ivr.staff.csvfile import export_csv, parse_roster
    from ivr.staff.roster import RosterError, RosterStore

    config = load_config(require_ami_credentials=False)
    db = _redis(config.redis_url)
    try:
        store = RosterStore(db)
        if data is not None:
            try:
                people = parse_roster(data, default_language=config.language)
            except RosterError as exc:
                for line, reason in exc.problems:
                    print(f"{args.file}:{line}: {reason}", file=sys.stderr)
                raise
            await store.replace(people)
            print(f"roster: {len(people)} staff imported")
            return ""
        return export_csv(await store.load())
    finally:
        await db.aclose()


def _spec(args: argparse.Namespace, ring_timeout: int) -> Any:
    from ivr.campaign.store import CampaignError, CampaignSpec

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
    )


async def _campaign(args: argparse.Namespace) -> int:
    from ivr.campaign import store
    from ivr.cli import progress
    from ivr.staff.roster import RosterStore

    config = load_config(require_ami_credentials=False)
    db = _redis(config.redis_url)
    try:
        command = args.campaign_command
        if command == "start":
            spec = _spec(args, config.ring_timeout)
            recordings = await _import_recordings(args, config)
            if recordings:
                spec = dataclasses.replace(spec, recordings=recordings)
            spec.validate()
            people = await RosterStore(db).load()
            if not people:
                raise store.CampaignError("campaign: the roster is empty; ivr roster import")
            if args.estimate:
                return await _estimate(spec, people, args.lines or config.max_channels, config)
            started = time.monotonic()
            cid = await store.create(db, spec, people)
            report = await store.report(db, cid)
            if not args.json:
                print(
                    f"campaign {cid} started: {report['total']} staff to call "
                    f"({(time.monotonic() - started) * 1000:.0f} ms)"
                )
            if args.wait:
                report = await progress.follow(db, cid)
            if args.json:
                print(json.dumps(report, indent=2, ensure_ascii=False))
            return 0
        found: str | None = args.id or await store.latest(db)
        if found is None:
            raise store.CampaignError("no campaign yet")
        cid = found
        if command == "stop":
            print(f"campaign {cid}: {await store.stop(db, cid)}")
        elif command == "status":
            report = await (progress.follow(db, cid) if args.follow else store.report(db, cid))
            if args.json:
                print(json.dumps(report, indent=2, ensure_ascii=False))
            elif not args.follow:
                print(f"campaign {cid} ({report['status']}): {progress.progress_line(report)}")
        elif command == "report":
            if args.html is not None:
                from ivr.campaign.ops import report_html
                from ivr.errors import ConfigError

                html = await report_html(db, cid)
                if args.html == "-":
                    sys.stdout.write(html)
                else:
                    try:
                        await asyncio.to_thread(Path(args.html).write_text, html, "utf-8")
                    except OSError as exc:
                        raise ConfigError(f"--html: cannot write {args.html}: {exc}") from None
                    print(f"campaign {cid}: report written to {args.html}", file=sys.stderr)
            elif args.csv:
                sys.stdout.write(await store.attempts_csv(db, cid))
            else:
                report = await store.report(db, cid)
                if args.json:
                    print(json.dumps(report, indent=2, ensure_ascii=False))
                else:
                    print(_report_text(report))
    finally:
        await db.aclose()
    return 0


async def _import_recordings(args: argparse.Namespace, config: Any) -> dict[str, str]:
    """Convert recorded messages into IVR_AUDIO_DIR, which the workers' Asterisk reads."""
    from ivr.voice.tts import Speaker

    sources = {lang: path for lang, path in (("fr", args.audio), ("en", args.audio_en)) if path}
    if not sources:
        return {}
    out: dict[str, str] = {}
    async with Speaker(config.audio_dir, rate=config.tts_rate) as speaker:
        for language, source in sources.items():
            imported = await speaker.import_audio(source)
            out[language] = str(imported.relative_to(config.audio_dir))
    return out


async def _estimate(spec: Any, people: list[Any], lines: int, config: Any) -> int:
    from collections import Counter

    from ivr.campaign.estimate import estimate
    from ivr.campaign.store import select
    from ivr.voice.tts import Speaker, wav_duration

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
    return 0


def _report_text(report: dict[str, Any]) -> str:
    kind = "DRILL" if report["drill"] else "ALERT"
    lines = [f"campaign {report['campaign']} ({kind}, {report['status']}): {report['total']} staff"]
    for key in (
        "available", "unavailable", "no_answer", "busy", "voicemail", "failed", "hung_up",
        "cancelled", "pending",
    ):  # fmt: skip
        lines.append(f"  {key:12} {report[key]}")
    for role, entry in report["by_role"].items():
        quota = f" quota {entry['quota']}{' met' if entry['met'] else ''}" if entry["quota"] else ""
        lines.append(f"  {role}: {entry['available']} available of {entry['total']}{quota}")
    lines.append(f"  expected arrivals: {report['forecast']}")
    return "\n".join(lines)


async def _worker(args: argparse.Namespace) -> int:
    import signal

    from ivr.dialer.alerter import Alerter
    from ivr.dialer.worker import DialerWorker, WorkerSettings

    config = load_config()
    settings = WorkerSettings(
        name=args.name or WorkerSettings.default_name(args.asterisk),
        asterisk=args.asterisk,
        capacity=args.capacity or config.max_channels,
        cps=args.cps,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    db = _redis(config.redis_url)
    try:
        async with Alerter(config) as alerter, contextlib.AsyncExitStack() as stack:
            if not args.no_lines:
                from ivr.lines.trigger import serving

                await stack.enter_async_context(serving(config, db, alerter.speaker))
            print(f"worker {settings.name}: {settings.capacity} channels", file=sys.stderr)
            await DialerWorker(alerter, db, settings).run(stop)
    finally:
        await db.aclose()
    return 0


async def _pin(args: argparse.Namespace) -> int:
    from ivr.access import audit
    from ivr.access.pins import PinError, PinStore, generate_pin
    from ivr.staff.roster import RosterStore

    config = load_config(require_ami_credentials=False)
    db = _redis(config.redis_url)
    try:
        store = PinStore(db)
        if args.pin_command == "list":
            for holder in await store.holders():
                print(holder)
            return 0
        if args.pin_command == "remove":
            if not await store.remove(args.person):
                raise PinError(f"pin: {args.person} has no PIN")
        else:
            if await RosterStore(db).get(args.person) is None:
                raise PinError(f"pin: {args.person!r} is not in the roster")
            pin = sys.stdin.readline().strip() if args.stdin else generate_pin()
            await store.set(args.person, pin)
            if not args.stdin:
                print(pin)
                print(f"PIN of {args.person}: shown once, give it now", file=sys.stderr)
        action = f"pin.{args.pin_command}"
        await audit.record(db, audit.cli_user(), action, target=args.person)
    finally:
        await db.aclose()
    return 0


async def _token(args: argparse.Namespace) -> int:
    from ivr.access import audit
    from ivr.access.tokens import Role, TokenStore

    db = _redis(load_config(require_ami_credentials=False).redis_url)
    try:
        store = TokenStore(db)
        if args.token_command == "list":
            for info in await store.list():
                created = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created_at))
                print(f"{info.name}\t{info.role.value}\tcreated {created}")
            return 0
        role = Role(args.role) if args.token_command == "create" else None
        if role is not None:
            secret = await store.create(args.name, role)
            print(secret)
            print(f"token {args.name} ({role.value}): shown once, keep it now", file=sys.stderr)
        else:
            await store.revoke(args.name)
            print(f"token {args.name} revoked", file=sys.stderr)
        details = {"role": role.value} if role is not None else {}
        action = f"token.{args.token_command}"
        await audit.record(db, audit.cli_user(), action, target=args.name, details=details)
    finally:
        await db.aclose()
    return 0


async def _call(args: argparse.Namespace) -> int:
    from ivr.dialer.alerter import Alerter

    config = load_config()
    if args.ring_timeout is not None:
        config = dataclasses.replace(config, ring_timeout=args.ring_timeout)
    from ivr.numbers import normalize_number

    number = normalize_number(args.number)  # refuse bad input before touching Asterisk
    async with Alerter(config) as alerter:
        result = await alerter.call(number, args.message, language=args.language)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        took = (result.ended_at or result.started_at) - result.started_at
        print(f"{result.number}: {result.outcome.value} ({result.detail}) in {took:.1f} s")
    return 0


async def _selftest(args: argparse.Namespace) -> int:
    from ivr.dialer.alerter import Alerter
    from ivr.dialer.selftest import render, run_selftest
    from ivr.errors import ConfigError

    env = dict(os.environ)
    if args.targets:
        env["IVR_SELFTEST_TARGETS"] = ",".join(args.targets)
    config = load_config(env)
    if not config.selftest_targets:
        raise ConfigError("IVR_SELFTEST_TARGETS: no route to test (or name them on the line)")
    async with Alerter(config) as alerter:
        checks = await run_selftest(alerter, config.selftest_targets, key_wait=args.key_wait)
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        print(render(checks))
    return 0 if all(c.ok for c in checks) else 1


def _sandbox(args: argparse.Namespace) -> int:
    from ivr.sandbox import asterisk as sandbox

    if args.action == "status":
        try:
            sandbox._run("status")
        except IvrError:
            print("stopped")
            return 1
        print("running")
        return 0
    if args.action == "env":
        print(sandbox.env_file().read_text(encoding="utf-8"), end="")
        return 0
    getattr(sandbox, args.action)()
    return 0


async def _prompts(args: argparse.Namespace) -> int:
    from ivr.voice.prompts import install_prompts, prompt_dir
    from ivr.voice.tts import Speaker, wav_duration

    config = load_config(require_ami_credentials=False)
    languages = LANGUAGES if args.lang == "all" else (args.lang,)
    total = 0.0
    async with Speaker(config.audio_dir, rate=config.tts_rate, timeout=config.tts_timeout) as sp:
        for language in languages:
            written = await install_prompts(sp, language)
            seconds = 0.0
            for name, changed in written.items():
                length = wav_duration(prompt_dir(config.audio_dir, language) / f"{name}.wav")
                seconds += length
                print(f"{language}/{name}: {'rendered' if changed else 'unchanged'} {length:.1f} s")
            done = sum(written.values())
            print(
                f"{language}: {len(written)} prompts, {done} rendered, {len(written) - done} "
                f"unchanged, {seconds:.1f} s of speech at {config.tts_rate} words per minute"
            )
            total += seconds
    print(f"total: {total:.1f} s of prompts under {config.audio_dir / 'prompts'}")
    return 0


def _config() -> int:
    config = load_config()
    shown: dict[str, Any] = dataclasses.asdict(config)
    shown["ami_secret"] = "(set)" if config.ami_secret else "(missing)"
    for key, value in shown.items():
        print(f"{key} = {value}")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ivr` command; return its exit code."""
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "call":
            return asyncio.run(_call(args))
        if args.command == "demo":
            from ivr.cli.demo import run_demo

            html = None if args.html == "-" else Path(args.html)
            return asyncio.run(run_demo(as_json=args.json, html=html))
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "config":
            return _config()
        if args.command == "selftest":
            return asyncio.run(_selftest(args))
        if args.command == "prompts":
            return asyncio.run(_prompts(args))
        if args.command == "roster":
            return _roster(args)
        if args.command == "campaign":
            return asyncio.run(_campaign(args))
        if args.command == "worker":
            return asyncio.run(_worker(args))
        if args.command == "serve":
            from ivr.api.app import serve

            asyncio.run(serve(load_config(require_ami_credentials=False)))
            return 0
        if args.command == "token":
            return asyncio.run(_token(args))
        if args.command == "pin":
            return asyncio.run(_pin(args))
    except IvrError as exc:
        print(f"ivr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RedisError as exc:
        # Only the commands that need Redis get here: say which server, not a traceback.
        url = os.environ.get("IVR_REDIS_URL", "the configured Redis")
        print(f"ivr: error: Redis ({_safe_url(url)}): {exc} (IVR_REDIS_URL)", file=sys.stderr)
        return 6
    except KeyboardInterrupt:
        print("ivr: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")
