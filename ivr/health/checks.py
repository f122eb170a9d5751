"""Health checks of the service's own parts: Redis (reachable, writable, persistent), the dialer
workers' heartbeats, speech (a voice renders into the audio directory), and the console."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ReadOnlyError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr import keys
from ivr.config import LANGUAGES, Config
from ivr.db import follows_sentinel, sentinel_state
from ivr.errors import TtsError
from ivr.health.heartbeat import FORGOTTEN_AFTER, Heartbeat
from ivr.health.state import Check, Report, State, run
from ivr.replication import online_replicas
from ivr.voice.tts import Speaker
from ivr.voice.wav import wav_duration

T = TypeVar("T")

#: What the speech check says, per language.
SENTENCES = {"fr": "Essai de la voix.", "en": "Voice test."}


async def _again_if_closed(step: Callable[[], Awaitable[T]]) -> T:
    """Run `step`, once more if its connection was found closed. After a restart of Redis,
    every pooled connection of a running service is dead and fails once before a new one is
    made: that is not Redis being down, and a health check must not flap on it."""
    try:
        return await step()
    except RedisConnectionError:
        return await step()


async def _probe_redis(redis: Redis) -> dict[str, Any]:
    await redis.ping()
    probe = keys.health_probe_prefix + secrets.token_hex(8)
    await redis.set(probe, "1", px=10_000)
    await redis.delete(probe)
    info: dict[str, Any] = await redis.info("persistence")
    return info


async def check_redis(redis: Redis) -> Check:
    """Reachable, writable (a key set and deleted), and its append-only file on and healthy."""
    try:
        info = await _again_if_closed(lambda: _probe_redis(redis))
    except AuthenticationError as exc:
        return Check("redis", State.CRITICAL, f"Redis refused the password (IVR_REDIS_URL): {exc}")
    except ReadOnlyError:
        return Check("redis", State.CRITICAL, "Redis is a read-only replica: nothing can be saved")
    except ResponseError as exc:
        # MISCONF: the last save failed (disk full...) and Redis refuses writes.
        return Check("redis", State.CRITICAL, f"Redis refuses writes: {exc}")
    except (RedisError, OSError) as exc:
        return Check("redis", State.CRITICAL, f"Redis unreachable: {exc}")
    details = {
        "aof_enabled": int(info.get("aof_enabled", 0)),
        "aof_last_write_status": str(info.get("aof_last_write_status", "")),
        "loading": int(info.get("loading", 0)),
    }
    if details["aof_last_write_status"] not in ("ok", ""):
        return Check(
            "redis",
            State.CRITICAL,
            "Redis cannot write its append-only file (disk full or not writable?)",
            details=details,
        )
    if not details["aof_enabled"]:
        return Check(
            "redis",
            State.WARNING,
            "Redis persistence is off: a restart loses the campaigns (set appendonly yes)",
            details=details,
        )
    if details["loading"]:
        return Check("redis", State.WARNING, "Redis is loading its data", details=details)
    if follows_sentinel(redis):
        return await _check_sentinel(redis, details)
    return Check("redis", State.OK, "reachable, writable, append-only file on", details=details)


async def _check_sentinel(redis: Redis, details: dict[str, Any]) -> Check:
    """Through Sentinel: replicas in sync with the primary, and what each Sentinel says."""
    try:
        replication = await redis.info("replication")
        view = await sentinel_state(redis)
    except (RedisError, OSError) as exc:
        return Check("redis", State.CRITICAL, f"Redis unreachable: {exc}", details=details)
    assert view is not None
    replicas = online_replicas(replication)
    sentinels = view["sentinels"]
    answering = [s for s in sentinels if "error" not in s]
    primaries = sorted({s["primary"] for s in answering})
    details.update(replicas_online=replicas, sentinel=view)
    said = f"{len(answering)} of {len(sentinels)} Sentinels answer, naming {', '.join(primaries)}"
    if replicas == 0:
        return Check(
            "redis",
            State.WARNING,
            f"no replica in sync: a failover now could lose the last writes ({said})",
            details=details,
        )
    if len(answering) < len(sentinels) or len(primaries) != 1:
        return Check("redis", State.WARNING, said, details=details)
    return Check(
        "redis",
        State.OK,
        f"reachable, writable, append-only file on, {replicas} replica(s) in sync, {said}",
        details=details,
    )


async def heartbeats(redis: Redis) -> dict[str, Heartbeat]:
    """Every worker's heartbeat that parses, by worker name."""
    raw = cast(dict[str, str], await _again_if_closed(lambda: redis.hgetall(keys.workers_key)))
    beats = {name: Heartbeat.from_json(value) for name, value in raw.items()}
    return {name: beat for name, beat in beats.items() if beat is not None}


async def check_workers(redis: Redis, now: float | None = None) -> Check:
    """CRITICAL when no worker is alive with its AMI link up (no call can be placed); WARNING
    when some worker is silent or has lost its PBX link."""
    now = time.time() if now is None else now
    try:
        beats = await heartbeats(redis)
    except (RedisError, OSError) as exc:
        return Check("workers", State.CRITICAL, f"cannot read the heartbeats: Redis: {exc}")
    beats = {n: b for n, b in beats.items() if b.age(now) < FORGOTTEN_AFTER}
    alive = sorted(n for n, b in beats.items() if not b.silent(now) and b.ami_up)
    no_pbx = sorted(n for n, b in beats.items() if not b.silent(now) and not b.ami_up)
    silent = sorted(n for n, b in beats.items() if b.silent(now))
    parts = [f"{len(alive)} alive" + (f" ({', '.join(alive)})" if alive else "")]
    if no_pbx:
        parts.append(f"without their AMI link: {', '.join(no_pbx)}")
    if silent:
        parts.append("silent: " + ", ".join(f"{n} for {beats[n].age(now):.0f} s" for n in silent))
    details = {"alive": alive, "no_ami": no_pbx, "silent": silent}
    if not alive:
        state = State.CRITICAL
        parts[0] = "no worker alive with its AMI link up: no call can be placed"
    else:
        state = State.WARNING if no_pbx or silent else State.OK
    return Check("workers", state, "; ".join(parts), details=details)


async def check_worker(redis: Redis, name: str, now: float | None = None) -> Check:
    """One worker (its container's or its unit's health): heartbeat fresh, AMI link up."""
    try:
        beat = (await heartbeats(redis)).get(name)
    except (RedisError, OSError) as exc:
        return Check("worker", State.CRITICAL, f"cannot read its heartbeat: Redis: {exc}")
    if beat is None:
        return Check("worker", State.CRITICAL, f"{name}: no heartbeat (not running?)")
    if beat.silent(now):
        return Check(
            "worker", State.CRITICAL, f"{name}: silent for {beat.age(now):.0f} s (stuck or dead)"
        )
    details = {"in_flight": beat.in_flight, "capacity": beat.capacity, "asterisk": beat.asterisk}
    if not beat.ami_up:
        return Check(
            "worker",
            State.CRITICAL,
            f"{name}: its AMI link to Asterisk {beat.asterisk!r} is down",
            details=details,
        )
    return Check(
        "worker",
        State.OK,
        f"{name}: AMI link up, {beat.in_flight}/{beat.capacity} calls",
        details=details,
    )


async def check_speech(config: Config, languages: tuple[str, ...] = LANGUAGES) -> Check:
    """Each language's voice renders a sentence into IVR_AUDIO_DIR (fresh, not from the cache),
    which also proves that directory writable."""
    scratch = config.audio_dir / "health" / secrets.token_hex(6)
    try:
        scratch.mkdir(parents=True)
    except OSError as exc:
        return Check("speech", State.CRITICAL, f"IVR_AUDIO_DIR {config.audio_dir}: {exc.strerror}")
    speaker = Speaker(scratch, rate=config.tts_rate, timeout=config.tts_timeout)
    rendered: dict[str, float] = {}
    try:
        for language in languages:
            wav = await speaker.render(SENTENCES[language], language)
            rendered[language] = round(wav_duration(wav), 2)
    except TtsError as exc:
        return Check("speech", State.CRITICAL, f"no voice: {exc}", details=rendered)
    finally:
        await speaker.close()
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    voices = ", ".join(f"{lang} {secs:.1f} s" for lang, secs in rendered.items())
    return Check("speech", State.OK, f"voices render ({voices})", details=rendered)


def console_url(config: Config) -> str:
    """The console's health URL as reached from this host."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.http_host, config.http_host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.http_port}/api/health"


async def check_console(config: Config, timeout: float = 5.0) -> Check:
    """The console answers `/api/health` (the container's health): OK while it answers and its
    Redis is reachable; Asterisk and the workers are the other checks' business."""
    url = console_url(config)

    def fetch() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our URL)
            return cast(dict[str, Any], json.loads(response.read()))

    try:
        body = await asyncio.to_thread(fetch)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("console", State.CRITICAL, f"{url}: no answer ({reason})")
    if body.get("redis") != "up":
        return Check("console", State.CRITICAL, f"{url}: answers, but its Redis is down")
    return Check(
        "console",
        State.OK,
        f"{url}: answers (PBX link {body.get('ami', '?')}, status {body.get('status', '?')})",
        details={"status": body.get("status"), "ami": body.get("ami")},
    )


def check_link(state: str) -> Check:
    """A running process's own AMI link, from its state ("up", "down", "unconfigured")."""
    if state == "up":
        return Check("ami", State.OK, "PBX link up")
    if state == "unconfigured":
        return Check("ami", State.OK, "no PBX link configured here (IVR_AMI_USER)")
    return Check("ami", State.CRITICAL, f"PBX link {state}: Asterisk unreachable from here")


async def service_report(redis: Redis, ami_state: str, timeout: float = 2.0) -> Report:
    """What a running service can say about the installation without side effects on the
    PBX: Redis, the workers' heartbeats, its own AMI link (`/api/health`)."""

    async def link() -> Check:
        return check_link(ami_state)

    return await run(
        [
            ("redis", lambda: check_redis(redis)),
            ("workers", lambda: check_workers(redis)),
            ("ami", link),
        ],
        timeout,
    )
