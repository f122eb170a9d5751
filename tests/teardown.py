"""Teardown that cannot hang a test run: a close that takes too long is reported — with where
every task of the loop waits — on the terminal, and left behind.

Twice under CI load a lines test's teardown waited 120 s in the event loop for something that
never came (the flows were already cancelled and ended); not reproduced here. This names it
the next time instead of failing a whole CI run on a fixture."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable

from ivr.logs import where

#: Seconds a fixture's close may take.
CLOSE_LIMIT = 30.0


async def bounded_close(what: str, closing: Awaitable[None], limit: float = CLOSE_LIMIT) -> None:
    """Await `closing`; after `limit` s, report the loop's tasks on stderr and go on."""
    task = asyncio.ensure_future(closing)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if task in done:
        task.result()
        return
    me = asyncio.current_task()
    waiting = [f"  {t.get_name()}: {where(t)}" for t in asyncio.all_tasks() if t is not me]
    report = f"TEARDOWN STUCK: {what} did not close within {limit:g} s; the loop's tasks:\n"
    sys.__stderr__.write(report + "\n".join(waiting) + "\n")  # not captured: on the CI log
    sys.__stderr__.flush()
    task.cancel()
