"""One shutdown path for the long-running commands (`ivr worker`, `ivr call`).

SIGTERM (systemd, compose) or SIGINT (Ctrl-C) asks the command to stop: a worker stops taking
new calls and lets the calls in progress finish. Whatever Redis or Asterisk are doing meanwhile
(a Redis that is gone makes every write retry), the command is cancelled once `grace` seconds
have passed, or at a second signal, and the process exits: a supervisor that sends SIGTERM
and waits is never kept waiting. Calls a worker leaves in progress are not lost: Asterisk keeps
them, and the next worker on that Asterisk follows them to their outcome.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Seconds between the stop request and the cancellation of what is still running.
GRACE = 10.0
#: Exit code of a command stopped by a signal before it was done (`ivr call`).
INTERRUPTED = 130


class Stopped(Exception):
    """The command was cancelled after its grace period (or by a second signal)."""


async def until_signalled(
    body: Callable[[asyncio.Event], Awaitable[int]], *, grace: float = GRACE
) -> int:
    """Run `body(stop)`; on SIGTERM or SIGINT set `stop`, and cancel `body` `grace` seconds
    later (at once with a second signal). Raises Stopped when it had to be cancelled."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.ensure_future(body(stop))
    forced = False

    def force() -> None:
        nonlocal forced
        if not task.done():
            forced = True
            task.cancel()

    def on_signal() -> None:
        if stop.is_set():
            force()
            return
        stop.set()
        loop.call_later(grace, force)

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        return await task
    except asyncio.CancelledError:
        if forced:
            raise Stopped(f"stopped after {grace:g} s without finishing cleanly") from None
        raise
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
