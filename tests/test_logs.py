"""`ivr.logs`: text lines or JSON objects, with the fields of the task that logs.

Each case runs in a fresh interpreter: logging is configured once per process, and pytest's
own capture handlers sit on the root logger of this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

SCRIPT = """
import asyncio, logging
from ivr import logs

logs.configure(logging.INFO, {fmt!r})
log = logging.getLogger("ivr.dialer.worker")

async def attempt() -> None:
    logs.bind(campaign_id="12", attempt_id="ivr-12-3-1")
    with logs.log_fields(channel="Local/1071@ivr-sim"):
        log.info("campaign 12: N1 available (key 1)")
        await asyncio.create_task(child())
    log.warning("no channel any more")

async def child() -> None:
    log.info("inherited", extra={{"worker": "given"}})

async def main() -> None:
    with logs.log_fields(worker="w-0"):
        await asyncio.create_task(attempt())
        log.info("the attempt's fields stay in its task")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("failed")
    logs.status.info("worker %s: %d channels", "w-0", 4)
    logging.getLogger("ivr.pbx.ami").debug("below the level")

asyncio.run(main())
"""


def run(fmt: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.format(fmt=fmt))],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return done.stderr


def test_json_lines_carry_the_fields_of_their_task() -> None:
    records: list[dict[str, Any]] = [json.loads(line) for line in run("json").splitlines()]
    assert [r["message"] for r in records] == [
        "campaign 12: N1 available (key 1)", "inherited", "no channel any more",
        "the attempt's fields stay in its task", "failed", "worker w-0: 4 channels",
    ]  # fmt: skip
    first, child, after, outer, failed, status = records
    assert first["level"] == "INFO" and first["logger"] == "ivr.dialer.worker"
    assert first["time"].endswith("+00:00")  # ISO 8601, UTC
    assert {k: first[k] for k in ("campaign_id", "attempt_id", "worker", "channel")} == {
        "campaign_id": "12", "attempt_id": "ivr-12-3-1", "worker": "w-0",
        "channel": "Local/1071@ivr-sim",
    }  # fmt: skip
    assert child["worker"] == "given", "extra= wins over the task's field"
    assert child["channel"] == "Local/1071@ivr-sim", "a task starts with its parent's fields"
    assert "channel" not in after and after["attempt_id"] == "ivr-12-3-1"
    assert outer["worker"] == "w-0" and "campaign_id" not in outer
    assert failed["level"] == "ERROR" and "ZeroDivisionError" in failed["exc_info"]
    assert status["logger"] == "ivr.status" and "campaign_id" not in status


def test_text_lines_as_before() -> None:
    lines = run("text").splitlines()
    assert lines[0].endswith(" INFO ivr.dialer.worker: campaign 12: N1 available (key 1)")
    assert "ivr-12-3-1" not in lines[0], "fields are for JSON; the message says it in words"
    assert "Traceback" in "\n".join(lines) and "ZeroDivisionError" in lines[-2]
    assert lines[-1] == "worker w-0: 4 channels", "a status line is the bare message"
    assert not any(line.startswith("{") for line in lines)
