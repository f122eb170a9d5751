"""The private redis-server: a real process, started, restarted, terminated and killed."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from ivr.errors import SandboxError
from ivr.sandbox.redisserver import RedisServer, free_port

Factory = Callable[..., RedisServer]


def get(server: RedisServer, key: str) -> bytes | None:
    with redis.Redis.from_url(server.url) as client:
        value: bytes | None = client.get(key)
        return value


def put(server: RedisServer, key: str, value: str) -> None:
    with redis.Redis.from_url(server.url) as client:
        client.set(key, value)


def test_starts_and_answers_ping(redis_factory: Factory) -> None:
    server = redis_factory()
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    with redis.Redis.from_url(server.url) as client:
        assert client.ping() is True


def test_given_port_and_directory_used(redis_factory: Factory, tmp_path: Path) -> None:
    port = free_port()
    server = RedisServer(tmp_path / "data", port=port)
    with server:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        with redis.Redis.from_url(server.url) as client:
            assert client.config_get("dir")["dir"] == str(tmp_path / "data")
            assert client.config_get("appendonly")["appendonly"] == "yes"
    assert server.process is None
    assert (tmp_path / "data" / "redis.log").exists()


def test_appendonly_data_survives_restart(redis_factory: Factory) -> None:
    server = redis_factory(appendonly=True)
    port, directory = server.port, server.directory
    put(server, "ivr:test", "kept")
    process = server.process
    assert process is not None
    server.stop()  # SIGTERM: Redis flushes the AOF before exiting
    assert process.returncode == 0
    server.start()
    assert (server.port, server.directory) == (port, directory)
    assert get(server, "ivr:test") == b"kept"


def test_without_appendonly_nothing_survives_restart(redis_factory: Factory) -> None:
    server = redis_factory(appendonly=False)
    put(server, "ivr:test", "lost")
    server.stop()
    server.start()
    assert get(server, "ivr:test") is None


def test_stop_kill(redis_factory: Factory) -> None:
    server = redis_factory()
    process = server.process
    assert process is not None
    server.stop(kill=True)
    assert process.returncode == -signal.SIGKILL
    assert server.process is None
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(server.url) as client:
        client.ping()


def test_stop_twice_and_before_start(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.stop()
    server.stop(kill=True)
    assert server.process is None


def test_port_taken_by_another_listener(redis_factory: Factory, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = RedisServer(tmp_path / "second", port=squatter.getsockname()[1])
        try:
            with pytest.raises(SandboxError, match="exited at start") as info:
                server.start()
        finally:
            server.stop()
    assert "redis.log" in str(info.value)


def test_port_taken_by_another_redis(redis_factory: Factory, tmp_path: Path) -> None:
    first = redis_factory()
    second = RedisServer(tmp_path / "second", port=first.port)
    try:
        with pytest.raises(SandboxError, match=str(first.port)):
            second.start()
    finally:
        second.stop()


def test_missing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match="redis-server not found"):
        RedisServer(tmp_path / "data").start()
