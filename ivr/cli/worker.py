"""`ivr worker`: dialer workers on the configured Asterisk, and the phone lines (FastAGI)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from ivr import logs
from ivr.cli.common import Commands, redis_for
from ivr.config import load_config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.lines.server import serving


def register(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="run dialer workers on the configured Asterisk")
    worker.add_argument("--name", help="worker name, stable across restarts")
    worker.add_argument("--asterisk", default="default", help="name of this Asterisk")
    worker.add_argument("--capacity", type=int, help="channels (IVR_MAX_CHANNELS)")
    worker.add_argument("--cps", type=float, default=0.0, help="most new calls per second")
    worker.add_argument(
        "--no-lines", action="store_true", help="do not serve the phone lines (FastAGI)"
    )
    worker.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
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
    async with (
        redis_for(config) as db,
        Alerter(config) as alerter,
        contextlib.AsyncExitStack() as stack,
    ):
        if not args.no_lines:
            await stack.enter_async_context(serving(config, db, alerter.speaker))
        logs.status.info("worker %s: %d channels", settings.name, settings.capacity)
        await DialerWorker(alerter, db, settings).run(stop)
    return 0
