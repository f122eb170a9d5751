"""Helpers for the two-site tests: workers on a site, what their logs say they called, and
how long a fault kept the surviving site from placing new calls."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.sites import TwoSites
from tests.campaigntools import states

#: Seconds after its lease that a call left on a lost site is placed again (IVR_SITE_LOST_AFTER):
#: longer than the tests' calls last (6 s of ringing, a short message), and a cut shorter than
#: the lease (30 s) and this together leaves the cut site's calls to it.
LOST_AFTER = 40


@dataclass
class SiteWorker:
    """An `ivr worker` running on a site (in its network namespace), logging JSON lines."""

    site: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def name(self) -> str:
        return worker_name(self.site)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def said(self, text: str, timeout: float) -> dict[str, str]:
        """The first log line whose message has `text`, once the worker wrote it (its log read
        every 100 ms: the worker tells nobody else); AssertionError past `timeout` seconds or
        if the worker exits first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = [line for line in self.lines() if text in line.get("message", "")]
            except json.JSONDecodeError:  # a line half written
                found = []
            if found:
                return found[0]
            if self.process.returncode is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"worker {self.name} never said {text!r}:\n{tail}")
            await asyncio.sleep(0.1)

    def lines(self) -> list[dict[str, str]]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                out.append(json.loads(raw))
        return out


def worker_name(site: str) -> str:
    return f"site-{site}"


async def start_worker(
    sites: TwoSites,
    site: str,
    directory: Path,
    *,
    lines: bool = False,
    capacity: int = 30,
    env: dict[str, str] | None = None,
) -> SiteWorker:
    """`ivr -v worker` on `site`: its Asterisk (the sandbox's AMI settings reach the site's own
    on its 127.0.0.1), Redis through the three Sentinels only. `lines`: it serves the phone
    lines too (FastAGI on the site's own 127.0.0.1:IVR_AGI_PORT, where the site's Asterisk
    looks for them); `env`: more settings (IVR_SCENARIOS...)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ.update(
        IVR_CONFIG=str(sandbox.env_file()),
        IVR_REDIS_URL="redis:///0",
        IVR_REDIS_SENTINELS=sites.sentinel_env,
        IVR_SITE_LOST_AFTER=str(LOST_AFTER),
        IVR_LOG_FORMAT="json",
        **(env or {}),
    )
    log = directory / f"worker-{site}.log"
    name = worker_name(site)
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *sites.prefix(site), sys.executable, "-m", "ivr", "-v", "worker", "--name", name,
            "--asterisk", name, "--capacity", str(capacity), *([] if lines else ["--no-lines"]),
            env=environ, stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    return SiteWorker(site, process, log)


@dataclass
class Calls:
    """What the workers' logs say each call ended with: attempt id -> site -> outcomes."""

    by_attempt: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, workers: list[SiteWorker]) -> Calls:
        calls = cls()
        for worker in workers:
            for line in worker.lines():
                attempt, message = line.get("attempt_id"), line.get("message", "")
                if not attempt or line.get("logger") != "ivr.dialer.worker" or "(" not in message:
                    continue
                outcome = message.split(":", 1)[1].split()[1]
                site_calls = calls.by_attempt.setdefault(attempt, defaultdict(list))
                site_calls[worker.site].append(outcome)
        return calls

    def placed_by_both(self) -> list[str]:
        """Attempts two sites both ended: the same call placed twice (must be none)."""
        return sorted(a for a, sites in self.by_attempt.items() if len(sites) > 1)

    def answered_twice(self) -> list[str]:
        """People whose answer (1 or 2) was recorded on two different attempts."""
        answered: dict[str, set[str]] = defaultdict(set)
        for attempt, sites in self.by_attempt.items():
            person = attempt.rsplit("-", 1)[0]
            if any(o in ("available", "unavailable") for outs in sites.values() for o in outs):
                answered[person].add(attempt)
        return sorted(p for p, attempts in answered.items() if len(attempts) > 1)


async def in_flight_of(db: aioredis.Redis, cid: str, worker: str) -> set[tuple[str, int]]:
    """(person, attempt number) of the calls `worker` holds now."""
    return {
        (pid, int(st["n"]))
        for pid, st in (await states(db, cid)).items()
        if st.get("s") == "c" and st.get("w") == worker
    }


async def first_new_claim(
    db: aioredis.Redis, cid: str, worker: str, before: set[tuple[str, int]], since: float
) -> float:
    """Seconds from `since` (time.time()) until `worker` holds a call it did not hold in
    `before`: calls flowing again from that site. Reads the campaign every 100 ms (a
    measurement of when, not a wait for something to happen: the caller knows it will)."""
    while True:
        now = await in_flight_of(db, cid, worker)
        if now - before:
            return time.time() - since
        await asyncio.sleep(0.1)
