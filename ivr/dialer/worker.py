"""Dialer workers: keep every channel of one Asterisk busy with the campaigns' next calls.

A worker owns one AMI link (through an `Alerter`) and a number of channels. Each free channel
is refilled at once: claim the next due person from Redis, place the call, record its outcome
the moment it is known (a key press counts before the spoken confirmation ends), free the
channel when the call is over. Several workers, in one process or many, on one Asterisk or
several, share a campaign through the scheduler's atomic claims.

Crash safety: attempt ids are deterministic (`ivr-<campaign>-<index>-<attempt>`), so a worker
restarted under the same name — or any worker on the same Asterisk once the lease of a dead one
expires — finds the calls in flight in Asterisk and follows them to their outcome instead of
calling again. A result is written to Redis before the Asterisk journal entry is deleted, and
writes are retried while Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr import keys, logs
from ivr.campaign import store
from ivr.campaign.scheduler import TIERS, Claim, Scheduler, attempt_id
from ivr.dialer import heartbeat, wake
from ivr.dialer.alerter import Alerter
from ivr.dialer.audio import CampaignAudio, call_request, load_audio
from ivr.dialer.settings import PREPARE_ATTEMPTS, WorkerSettings
from ivr.dialer.sites import end_lost_calls
from ivr.dialer.tidy import Tidier
from ivr.errors import AmiError, InvalidNumberError, IvrError
from ivr.health.heartbeat import Heartbeat
from ivr.keys import campaign_key
from ivr.outcomes import Outcome
from ivr.pbx.astdb import AstDb
from ivr.pbx.calls import CallResult
from ivr.retry import retrying

log = logging.getLogger(__name__)


class DialerWorker:
    """One worker on one Asterisk. `run()` until `stop` is set."""

    def __init__(self, alerter: Alerter, redis: Redis, settings: WorkerSettings) -> None:
        self.alerter = alerter
        self.redis = redis
        self.settings = settings
        self.scheduler = Scheduler(redis)
        self.astdb = AstDb(alerter.link)
        self.tidier = Tidier(redis, self.astdb)
        self._slots = asyncio.Semaphore(settings.capacity)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: attempt id -> (campaign, pid): calls this worker is following, for lease renewal.
        self._in_flight: dict[str, tuple[str, str]] = {}
        self._audio: dict[str, CampaignAudio] = {}
        self._own_pending = True  # its calls of a previous life not yet taken back (`_adopt`)
        self._audio_lock = asyncio.Lock()
        #: campaign -> calls in a row that could not be prepared.
        self._prepare_failures: dict[str, int] = {}
        self._next_originate = 0.0
        self.placed = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until `stop` is set, then let the calls in flight finish (they are followed)."""
        with logs.log_fields(worker=self.settings.name):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop), name="dialer-wake")
        upkeep = asyncio.create_task(self._upkeep(stop), name="dialer-upkeep")
        try:
            with contextlib.suppress(RedisError):  # Redis away: the next upkeep does it
                await self._adopt(own=True)
            while not stop.is_set():
                await self._acquire_slot(stop)
                if stop.is_set():
                    self._slots.release()
                    break
                claim = await self._claim_next()
                if claim is None:
                    self._slots.release()
                    await self._idle(stop)
                    continue
                await self._pace()
                self._spawn(self._attempt(claim))
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            for task in (listener, upkeep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await heartbeat.remove(self.redis, self.settings.name)

    # -- claiming ----------------------------------------------------------------------------

    async def _acquire_slot(self, stop: asyncio.Event) -> None:
        await self._slots.acquire()
        # Claiming while the AMI link is down would only pile up work we cannot place.
        while not self.alerter.link.is_up and not stop.is_set():
            with contextlib.suppress(AmiError):
                await self.alerter.link.wait_up(1.0)

    async def _claim_next(self) -> Claim | None:
        if not await self.scheduler.replication.may_claim():
            return None  # perhaps a stale primary (ivr.db): the calls held go on, no new ones
        for cid in await retrying(store.active, self.redis):
            claim: Claim | None = await retrying(
                self.scheduler.claim,
                cid,
                store.now_ms(),
                lease_ms=int(self.settings.lease * 1000),
                worker=self.settings.name,
                asterisk=self.settings.asterisk,
                # Retried with the same token: a claim whose answer was lost comes back.
                token=uuid.uuid4().hex,
            )
            if claim is not None:
                return claim
        return None

    async def _idle(self, stop: asyncio.Event) -> None:
        """Nothing to claim: wait for a wake-up (new campaign, a result that frees work) or the
        next retry's due time. People already due but held back by their role's cap on calls
        in flight wait for a result, not for the clock."""
        wait = 1.0
        now = store.now_ms()
        for cid in await retrying(store.active, self.redis):
            for tier in TIERS:
                later = await retrying(
                    self.redis.zrangebyscore,
                    campaign_key(cid, tier), f"({now}", "+inf", start=0, num=1, withscores=True,
                )  # fmt: skip
                if later:
                    wait = min(wait, (float(later[0][1]) - now) / 1000)
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=max(wait, 0.01), return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _pace(self) -> None:
        if self.settings.cps <= 0:
            return
        now = time.monotonic()
        if self._next_originate > now:
            await asyncio.sleep(self._next_originate - now)  # rate cap, not synchronisation
        self._next_originate = max(now, self._next_originate) + 1 / self.settings.cps

    # -- one attempt -------------------------------------------------------------------------

    async def _attempt(self, claim: Claim) -> None:
        logs.bind(campaign_id=claim.campaign, attempt_id=claim.attempt_id)  # its own task
        key = claim.attempt_id
        self._in_flight[key] = (claim.campaign, claim.pid)
        try:
            audio = await self._campaign_audio(claim.campaign)
            request = await call_request(self.alerter, claim, audio)
        except IvrError as exc:
            log.error(
                "campaign %s: cannot prepare the call to %s: %s", claim.campaign, claim.pid, exc
            )
            await self._requeue(claim)
            self._in_flight.pop(key, None)
            await self._unplaceable(claim.campaign, exc)
            return
        self._prepare_failures.pop(claim.campaign, None)
        requeued = False
        result: CallResult | None = None
        try:
            self.placed += 1
            result = await self.alerter.caller.call(request, lambda r: self._record(claim, r))
            await self._record_eta(claim, result)
        except InvalidNumberError as exc:
            await self._finish(claim, "failed", claim.number, str(exc), None)
        except AmiError as exc:
            # Raised before anything was sent (the link stayed down): safe to place it again.
            log.warning("campaign %s: %s not placed: %s", claim.campaign, claim.pid, exc)
            await self._requeue(claim)
            requeued = True
        finally:
            self._in_flight.pop(key, None)
        if not requeued:
            await self._release(claim, result)

    async def _record(self, claim: Claim, result: CallResult) -> None:
        """Write an outcome to Redis (retrying while Redis is away); act on quota met."""
        if result.outcome is Outcome.FAILED and result.detail.startswith("not placed"):
            await self._requeue(claim)
            return
        await self._finish(claim, result.outcome.value, result.number, result.detail, result)

    async def _finish(
        self, claim: Claim, outcome: str, number: str, detail: str, result: CallResult | None
    ) -> None:
        got, safe = await retrying(
            self.scheduler.finish_replicated,
            claim.campaign, claim.pid, claim.attempt, outcome, store.now_ms(),
            worker=self.settings.name, number=number, detail=detail,
        )  # fmt: skip
        if result is not None and not safe:
            # No replica has it: a failover now could lose it. Asterisk's journal keeps the
            # answer, and the attempt's lease, left to expire, brings a worker back to it
            # (`_release`): it finds the outcome recorded, or records it from the journal.
            result.keep_journal = True
        log.info("campaign %s: %s %s (%s)", claim.campaign, claim.pid, outcome, detail)
        # A result frees a slot of the role's cap, or queues the next number or a backup.
        self._wake.set()
        if got and got[0] == "quota_met":
            await self._quota_met(claim.campaign, got[1])
            await retrying(
                self.redis.publish, keys.wake_channel, f"quota {claim.campaign} {got[1]}"
            )

    async def _requeue(self, claim: Claim) -> None:
        await retrying(
            self.scheduler.requeue, claim.campaign, claim.pid, claim.attempt, store.now_ms()
        )
        self._wake.set()

    async def _quota_met(self, cid: str, role: str) -> None:
        """Tell this Asterisk, so calls already ringing for `role` hear "stay reachable"."""
        audio = await self._campaign_audio(cid)
        with contextlib.suppress(AmiError):
            await self.astdb.set_quota_met(audio.quota_flag(role))

    async def _quota_raised(self, cid: str, role: str) -> None:
        """An operator raised a met quota: calls for `role` must ask the question again."""
        audio = await self._campaign_audio(cid)
        raw = cast(str | None, await self.redis.hget(campaign_key(cid, "quota"), role))
        if raw is not None:
            audio.quotas[role] = int(raw)
        with contextlib.suppress(AmiError):
            await self.astdb.clear_quota_met(audio.quota_flag(role))

    async def _campaign_audio(self, cid: str) -> CampaignAudio:
        async with self._audio_lock:
            if cid not in self._audio:
                self._audio[cid] = await retrying(load_audio, self.alerter, self.redis, cid)
            return self._audio[cid]

    # -- adoption, leases, wake-ups ------------------------------------------------------------

    async def _adopt(self, *, own: bool = False) -> None:
        """Follow the calls of dead workers on the same Asterisk (and, with `own`, those this
        worker had in flight before a restart) instead of placing them again; end those left
        on a lost Asterisk (`ivr.dialer.sites`) and the writing of campaigns their creator left."""
        for cid in await store.repair_unwritten(self.redis):
            log.warning("campaign %s: its creator stopped before writing everyone", cid)
        recent = cast(list[str], await retrying(self.redis.zrevrange, keys.campaigns_key, 0, 50))
        for cid in recent:
            if not await self.redis.zcard(campaign_key(cid, "leases")):
                continue
            await end_lost_calls(self.redis, self.scheduler, self.settings, cid, self._finish)
            taken = await retrying(
                self.scheduler.reclaim,
                cid,
                store.now_ms(),
                lease_ms=int(self.settings.lease * 1000),
                worker=self.settings.name,
                asterisk=self.settings.asterisk,
                own=own,
            )
            uid = str(await self.redis.hget(campaign_key(cid), "uid"))
            for pid, attempt, phone_index in taken:
                got = await store.get_person(self.redis, cid, pid)
                if got is None:
                    continue
                person, state = got
                number = person.phones[phone_index]
                claim = Claim(cid, pid, attempt, number, person, state.index, uid)
                if claim.attempt_id in self._in_flight:
                    continue
                await self._slots.acquire()
                log.info("campaign %s: following %s after a restart", cid, claim.attempt_id)
                self._spawn(self._follow(claim))
        if own:
            self._own_pending = False

    async def _follow(self, claim: Claim) -> None:
        logs.bind(campaign_id=claim.campaign, attempt_id=claim.attempt_id)  # its own task
        self._in_flight[claim.attempt_id] = (claim.campaign, claim.pid)
        try:
            audio = await self._campaign_audio(claim.campaign)
            result = await self.alerter.caller.follow(
                claim.attempt_id,
                claim.number,
                ring_timeout=audio.spec.ring_timeout,
                on_outcome=lambda r: self._record(claim, r),
            )
            await self._record_eta(claim, result)
        finally:
            self._in_flight.pop(claim.attempt_id, None)
        await self._release(claim, result)

    async def _unplaceable(self, cid: str, exc: IvrError) -> None:
        """A campaign whose calls cannot be prepared (its message does not render, its
        recording is gone) ends `failed`, saying why, instead of being retried for ever."""
        failures = self._prepare_failures[cid] = self._prepare_failures.get(cid, 0) + 1
        if failures < PREPARE_ATTEMPTS:
            return
        reason = f"its calls cannot be prepared: {exc}"
        status = await retrying(store.fail, self.redis, cid, reason)
        log.error("campaign %s: %s (%s)", cid, status, reason)

    async def _record_eta(self, claim: Claim, result: CallResult) -> None:
        """Minutes to arrival are keyed after the outcome was recorded: count them now."""
        if result.eta is not None and result.outcome is Outcome.AVAILABLE:
            await retrying(
                self.scheduler.record_eta,
                claim.campaign, claim.pid, result.eta, store.now_ms(), claim.person.role,
            )  # fmt: skip

    async def _release(self, claim: Claim, result: CallResult | None) -> None:
        """The call is over: its line is free, its lease can go — unless no replica has its
        outcome yet: the lease then expires and a worker comes back to the attempt."""
        if result is not None and result.keep_journal:
            return
        await retrying(
            self.scheduler.release, claim.campaign, claim.pid, claim.attempt, self.settings.name
        )

    async def _upkeep(self, stop: asyncio.Event) -> None:
        """Publish a heartbeat, renew our leases, adopt calls of dead workers."""
        period = max(0.5, self.settings.lease / 3)
        while not stop.is_set():
            await heartbeat.beat(self.redis, self.settings.name, self._heartbeat(period))
            await heartbeat.pause(stop, self.alerter.link, period)
            if stop.is_set():
                break
            try:
                until = store.now_ms() + int(self.settings.lease * 1000)
                by_campaign: dict[str, list[str]] = {}
                for cid, pid in list(self._in_flight.values()):
                    by_campaign.setdefault(cid, []).append(pid)
                for cid, pids in by_campaign.items():
                    await self.scheduler.renew(cid, pids, until)
                await self._adopt(own=self._own_pending)
                await self._tidy(set(by_campaign))
            except RedisError as exc:
                log.warning("worker %s: Redis unavailable for upkeep: %s", self.settings.name, exc)
            except Exception:  # one round's failure must not end the upkeep (adoption) for good
                log.exception("worker %s: upkeep round failed", self.settings.name)

    async def _tidy(self, busy: set[str]) -> None:
        """Forget, on this Asterisk, what ended campaigns left (`ivr.dialer.tidy`)."""
        loaded = {cid: audio.uid for cid, audio in self._audio.items()}
        for cid in await self.tidier.round(busy, loaded):
            self._audio.pop(cid, None)

    def _heartbeat(self, period: float) -> Heartbeat:
        return Heartbeat(
            asterisk=self.settings.asterisk,
            capacity=self.settings.capacity,
            in_flight=self.in_flight,
            ami_up=self.alerter.link.is_up,
            seen=time.time(),
            period=period,
        )

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake up on new campaigns; learn about quotas met by other workers."""
        async for data in wake.messages(self.redis, keys.wake_channel, stop):
            words = data.split()
            if words[:1] == ["quota"] and len(words) == 3:
                await self._quota_met(words[1], words[2])
            elif words[:1] == ["raised"] and len(words) == 3:
                await self._quota_raised(words[1], words[2])
            self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._slots.release()
            if not t.cancelled() and t.exception() is not None:
                log.error("dialer task failed", exc_info=t.exception())

        task.add_done_callback(done)


__all__ = ["DialerWorker", "WorkerSettings", "attempt_id"]
