"""`ivr health`: the installation's checks as a Nagios/Centreon plugin (one line, exit 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN), or `--json`. The container health checks use it too:
`--worker NAME` for a worker, `--console` for the console.

Unlike the other commands, a configuration error exits 3 (UNKNOWN, the plugins' convention for
"could not check"), not 2, which a supervisor would read as CRITICAL.
"""

from __future__ import annotations

import argparse
import asyncio

from redis.asyncio import Redis

from ivr.cli.common import Commands, print_json, redis_for
from ivr.config import Config, load_config
from ivr.dialer.alerter import Alerter
from ivr.dialer.selftest import run_selftest
from ivr.errors import IvrError
from ivr.health import checks
from ivr.health.asterisk import check_agi, check_ami
from ivr.health.state import Check, Probe, Report, State, run

#: What `ivr health` checks when not told otherwise, in the order it reports them.
CHECKS = ("ami", "redis", "agi", "speech", "workers")
#: Seconds the self-test calls may take (ring, message, key), whatever --timeout says.
SELFTEST_TIMEOUT = 90.0


def register(commands: Commands) -> None:
    health = commands.add_parser(
        "health",
        help="check Asterisk, Redis, the phone lines, speech and the workers "
        "(Nagios plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    )
    health.add_argument(
        "--check", action="append", choices=CHECKS, help="only this check (repeatable)"
    )
    scope = health.add_mutually_exclusive_group()
    scope.add_argument(
        "--worker",
        metavar="NAME",
        help="one worker: its heartbeat and AMI link, Redis, the phone lines' port",
    )
    scope.add_argument(
        "--console", action="store_true", help="the console: /api/health answers, Redis up"
    )
    health.add_argument(
        "--selftest", action="store_true", help="also a real test call per IVR_SELFTEST_TARGETS"
    )
    health.add_argument("--timeout", type=float, default=10.0, help="seconds per check")
    health.add_argument("--json", action="store_true", help="every check as JSON")
    health.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    wanted = tuple(args.check or CHECKS)
    try:
        config = load_config(
            require_ami_credentials=not (args.worker or args.console)
            and ("ami" in wanted or args.selftest)
        )
        report = asyncio.run(_report(config, args, wanted))
    except IvrError as exc:
        report = Report((Check("config", State.UNKNOWN, str(exc)),))
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.line())
    return int(report.state)


async def _report(config: Config, args: argparse.Namespace, wanted: tuple[str, ...]) -> Report:
    async with redis_for(config) as db:
        probes: list[tuple[str, Probe]]
        if args.console:
            probes = [("console", lambda: checks.check_console(config, args.timeout))]
        elif args.worker:
            probes = [
                ("worker", lambda: checks.check_worker(db, args.worker)),
                ("redis", lambda: checks.check_redis(db)),
                ("agi", lambda: check_agi(config, args.timeout)),
            ]
        else:
            probes = [(name, _probe(name, config, db, args.timeout)) for name in wanted]
        report = await run(probes, args.timeout)
    if args.selftest:
        selftest = await run([("selftest", lambda: _selftest(config))], SELFTEST_TIMEOUT)
        report = Report(report.checks + selftest.checks)
    return report


def _probe(name: str, config: Config, db: Redis, timeout: float) -> Probe:
    probes: dict[str, Probe] = {
        "ami": lambda: check_ami(config),
        "redis": lambda: checks.check_redis(db),
        "agi": lambda: check_agi(config, timeout),
        "speech": lambda: checks.check_speech(config),
        "workers": lambda: checks.check_workers(db),
    }
    return probes[name]


async def _selftest(config: Config) -> Check:
    """A real alert call through each route to a phone that presses 1 (`ivr selftest`)."""
    if not config.selftest_targets:
        return Check("selftest", State.UNKNOWN, "IVR_SELFTEST_TARGETS: no route to call")
    async with Alerter(config) as alerter:
        results = await run_selftest(alerter, config.selftest_targets)
    failed = [r for r in results if not r.ok]
    summary = "; ".join(f"{r.target} {r.verdict}" for r in results)
    return Check(
        "selftest",
        State.CRITICAL if failed else State.OK,
        summary,
        details={"routes": [r.as_dict() for r in results]},
    )
