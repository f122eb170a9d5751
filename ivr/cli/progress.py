"""Live progress of a campaign, drawn by rich: on a terminal a progress bar with the elapsed
time and the counts in colour, redrawn as events arrive; elsewhere (a pipe, a log file, a dumb
terminal, the progress of `--json` commands on stderr) a plain line every 2 s and at the end,
no escape codes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from redis.asyncio import Redis
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ivr.campaign.report import Report
from ivr.campaign.report import report as campaign_report
from ivr.keys import campaign_key

#: The counts shown, in this order, each in its colour on a terminal.
_SHOWN = {
    "available": "bold green",
    "unavailable": "red",
    "no_answer": "yellow",
    "busy": "yellow",
    "voicemail": "yellow",
    "failed": "red",
    "cancelled": "dim",
}
#: Seconds between two plain lines when the output is not a terminal.
PLAIN_EVERY = 2.0


def summary(report: Report) -> str:
    """The counts as rich markup: `available 40  no answer 12 ... in flight 3  nurse 10/10 ok`
    (outcomes with none are left out; roles with a quota last)."""
    parts = [
        f"[{style}]{outcome.replace('_', ' ')} {report[outcome]}[/]"
        for outcome, style in _SHOWN.items()
        if report[outcome]
    ]
    parts.append(f"[cyan]in flight {report['in_flight']}[/]")
    sms = report.get("sms") or {}
    if sms.get("sent") or sms.get("answered"):
        parts.append(f"[magenta]SMS sent {sms['sent']}, answered {sms['answered']}[/]")
    for role, entry in report["by_role"].items():
        if entry["quota"]:
            met = " ok" if entry["met"] else ""
            style = "bold green" if entry["met"] else "default"
            parts.append(f"[{style}]{escape(role)} {entry['available']}/{entry['quota']}{met}[/]")
    return "  ".join(parts)


def status_line(report: Report) -> str:
    """`120/300 done  available 40  no answer 12 ...`: the progress as plain text."""
    return Text.from_markup(_done_and_summary(report)).plain


def print_status(cid: str, report: Report, out: TextIO = sys.stdout) -> None:
    """One line: `campaign 12 (running): 120/300 done  available 40 ...`, coloured on a
    terminal."""
    console = Console(file=out, highlight=False)
    line = f"campaign {cid} ({report['status']}): {_done_and_summary(report)}"
    console.print(line, soft_wrap=True)


def _done_and_summary(report: Report) -> str:
    return f"{report['total'] - report['pending']}/{report['total']} done  {summary(report)}"


class _Bar(Progress):
    """The bar, counted and timed, on one line; the counts in full on the next (on a narrow
    terminal they wrap there instead of squeezing the bar)."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text.from_markup(task.fields.get("counts", ""))


async def follow(redis: Redis, cid: str, out: TextIO = sys.stdout) -> Report:
    """Show the progress on each campaign event until the campaign is over; its last report."""
    console = Console(file=out, highlight=False)
    if not console.is_interactive:  # a pipe, a file, a dumb terminal: nothing to redraw
        return await _each_change(redis, cid, _plain_lines(console))
    bar = _Bar(
        TextColumn(f"campaign {cid}"),
        BarColumn(bar_width=40),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        # Redrawn on each event, not from a thread of its own.
        auto_refresh=False,
    )
    task = bar.add_task("", total=None, counts="")

    def draw(report: Report) -> None:
        done = report["total"] - report["pending"]
        bar.update(task, total=report["total"], completed=done, counts=summary(report))
        bar.refresh()

    with bar:
        return await _each_change(redis, cid, draw)


def _plain_lines(console: Console) -> Callable[[Report], None]:
    last = -PLAIN_EVERY

    def show(report: Report) -> None:
        nonlocal last
        if _over(report) or time.monotonic() - last >= PLAIN_EVERY:
            console.print(status_line(report), markup=False, soft_wrap=True)
            last = time.monotonic()

    return show


async def _each_change(redis: Redis, cid: str, show: Callable[[Report], None]) -> Report:
    """`show` the report, again each time the campaign's event log moves (every second at
    least), until the campaign is over; its last report."""
    after = "$"
    while True:
        report = await campaign_report(redis, cid)
        show(report)
        if _over(report):
            return report
        got: Any = await redis.xread({campaign_key(cid, "events"): after}, count=1000, block=1000)
        if got:
            after = str(got[0][1][-1][0])
        else:
            await asyncio.sleep(0)


def _over(report: Report) -> bool:
    return bool(report["status"] != "running" and report["in_flight"] == 0)
