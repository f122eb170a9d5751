"""`ivr worker`: dialer workers on the configured Asterisk (staff calls and the director's
call-backs), and the phone lines (FastAGI)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from ivr import limits, logs
from ivr.cli.common import Commands, redis_for, require_redis
from ivr.cli.lifecycle import Stopped, until_signalled
from ivr.config import Config, load_config
from ivr.dialer.alerter import Alerter
from ivr.dialer.recall import RecallDialer
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.lines.server import serving
from ivr.sms import mail
from ivr.sms import service as sms

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="run dialer workers on the configured Asterisk")
    worker.add_argument("--name", help="worker name, stable across restarts")
    worker.add_argument("--asterisk", default="default", help="name of this Asterisk")
    worker.add_argument(
        "--capacity",
        type=limits.CAPACITY.option("--capacity"),
        help=f"channels, {limits.CAPACITY.describe()} (IVR_MAX_CHANNELS)",
    )
    worker.add_argument(
        "--cps",
        type=limits.CPS.option("--cps"),
        default=0.0,
        help=f"most new calls per second, {limits.CPS.describe()} (0: no cap)",
    )
    worker.add_argument(
        "--no-lines", action="store_true", help="do not serve the phone lines (FastAGI)"
    )
    worker.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    try:
        return await until_signalled(lambda stop: serve_and_dial(args, stop))
    except Stopped as exc:
        log.warning("worker %s", exc)
        return 0


async def serve_and_dial(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Until `stop`: the phone lines (unless --no-lines) and the dialer."""
    config = load_config()
    settings = WorkerSettings(
        name=args.name or WorkerSettings.default_name(args.asterisk),
        asterisk=args.asterisk,
        capacity=args.capacity or config.max_channels,
        cps=args.cps,
        orphan_after=config.site_lost_after,
    )
    async with redis_for(config) as db:
        await require_redis(db, config)
        await _run(args, config, db, settings, stop)
    return 0


async def _run(
    args: argparse.Namespace,
    config: Config,
    db: Redis,
    settings: WorkerSettings,
    stop: asyncio.Event,
) -> None:
    async with (
        Alerter(config) as alerter,
        contextlib.AsyncExitStack() as stack,
    ):
        if not args.no_lines:
            await stack.enter_async_context(serving(config, db, alerter.speaker, alerter.link))
        logs.status.info("worker %s: %d channels", settings.name, settings.capacity)
        # The director's call-backs (a quota met, a campaign ended) beside the staff calls.
        await asyncio.gather(
            DialerWorker(alerter, db, settings).run(stop),
            RecallDialer(alerter, db, settings).run(stop),
            sms.run(config, alerter.link, db, settings.name, stop),
            mail.run(config, db, settings.name, stop),
        )
