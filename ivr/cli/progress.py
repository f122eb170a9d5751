"""Live progress of a campaign on a terminal: one line, redrawn as events arrive."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, TextIO

from redis.asyncio import Redis

from ivr.campaign.report import Report
from ivr.campaign.report import report as campaign_report
from ivr.keys import campaign_key


def progress_line(report: Report, width: int = 30) -> str:
    """`[#####.....] 120/300 done  available 40  no answer 12 ...  nurse 10/10 ok`."""
    total = report["total"] or 1
    done = total - report["pending"]
    filled = round(width * done / total)
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {done}/{report['total']}"]
    for outcome in ("available", "unavailable", "no_answer", "busy", "voicemail", "failed"):
        if report[outcome]:
            parts.append(f"{outcome.replace('_', ' ')} {report[outcome]}")
    if report["cancelled"]:
        parts.append(f"cancelled {report['cancelled']}")
    parts.append(f"in flight {report['in_flight']}")
    for role, entry in report["by_role"].items():
        if entry["quota"]:
            mark = " ok" if entry["met"] else ""
            parts.append(f"{role} {entry['available']}/{entry['quota']}{mark}")
    return "  ".join(parts)


async def follow(redis: Redis, cid: str, out: TextIO = sys.stdout) -> Report:
    """Redraw the progress line on each campaign event until the campaign is over."""
    tty = out.isatty()
    last_id = "$"
    last_print = 0.0
    while True:
        report = await campaign_report(redis, cid)
        now = time.monotonic()
        over = report["status"] != "running" and report["in_flight"] == 0
        if tty:
            out.write("\r\033[K" + progress_line(report))
            out.flush()
        elif over or now - last_print >= 2:
            out.write(progress_line(report) + "\n")
            out.flush()
            last_print = now
        if over:
            if tty:
                out.write("\n")
            return report
        # Block on the campaign's event log: redraw when something happens (1 s at most).
        got: Any = await redis.xread({campaign_key(cid, "events"): last_id}, count=1000, block=1000)
        if got:
            last_id = str(got[0][1][-1][0])
        else:
            await asyncio.sleep(0)
