"""The AMI link: login, clear errors, per-action timeouts that leak nothing, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ivr.config import Config
from ivr.errors import AmiAuthError, AmiConnectError, AmiDisconnected, AmiNotConnected, AmiTimeout
from ivr.pbx import ami as ami_module
from ivr.pbx.ami import AmiLink
from ivr.sandbox.redisserver import free_port
from tests.tcpproxy import TcpProxy


class SilentAmi:
    """A minimal AMI peer (unit-test fake): answers Login and Ping, never anything else; after
    the Login, says FullyBooted as Asterisk does (unless `booted` is False: still loading)."""

    def __init__(self, booted: bool = True) -> None:
        self.booted = booted
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while block := await reader.readuntil(b"\r\n\r\n"):
                fields = dict(
                    line.split(": ", 1)
                    for line in block.decode().strip().split("\r\n")
                    if ": " in line
                )
                if fields.get("Action") in ("Login", "Ping"):
                    writer.write(
                        f"Response: Success\r\nActionID: {fields['ActionID']}\r\n\r\n".encode()
                    )
                if fields.get("Action") == "Login" and self.booted:
                    writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def silent() -> AsyncIterator[SilentAmi]:
    server = SilentAmi()
    await server.start()
    yield server
    await server.close()


async def test_a_booting_asterisk_is_not_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logged in, but Asterisk never says FullyBooted: an Originate would fail, so the link
    does not count as up and says why."""
    monkeypatch.setattr(ami_module, "BOOT_TIMEOUT", 0.3)
    booting = SilentAmi(booted=False)
    await booting.start()
    try:
        link = AmiLink("127.0.0.1", booting.port, "u", "s")
        with pytest.raises(AmiConnectError, match="not fully booted after 0.3 s"):
            await link.start()
        assert not link.is_up
    finally:
        await booting.close()


async def test_action_timeout_leaks_nothing(silent: SilentAmi) -> None:
    link = AmiLink("127.0.0.1", silent.port, "u", "s")
    await link.start()
    try:
        with pytest.raises(AmiTimeout):
            await link.action({"Action": "Status"}, timeout=0.2)
        assert link._manager is not None
        assert link._manager.protocol.responses == {}, "the timed-out action is forgotten"
        assert link._pending == {}
        reply = await link.action({"Action": "Ping"}, timeout=2)
        assert reply.success, "the link still works after a timeout"
    finally:
        await link.close()


@pytest.mark.integration
async def test_login_and_ping(ami: AmiLink) -> None:
    assert ami.is_up and ami.generation == 1
    reply = await ami.action({"Action": "Ping"})
    assert reply.success


@pytest.mark.integration
async def test_wrong_secret_is_a_clear_error(sandbox_config: Config) -> None:
    link = AmiLink(sandbox_config.ami_host, sandbox_config.ami_port, "ivr", "wrong-secret")
    with pytest.raises(AmiAuthError, match="refused user 'ivr'.*IVR_AMI_SECRET"):
        await asyncio.wait_for(link.start(), 15)


async def test_unreachable_is_a_clear_error() -> None:
    link = AmiLink("127.0.0.1", free_port(), "ivr", "x")
    with pytest.raises(AmiConnectError, match="unreachable.*IVR_AMI_PORT"):
        await asyncio.wait_for(link.start(), 10)


async def test_not_an_ami_port_is_a_clear_error() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def mute(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accept, then say nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    link = AmiLink("127.0.0.1", server.sockets[0].getsockname()[1], "ivr", "x", connect_timeout=0.5)
    try:
        with pytest.raises(AmiConnectError, match="no answer to Login"):
            await asyncio.wait_for(link.start(), 10)
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


@pytest.mark.integration
async def test_reconnects_after_a_cut_and_fails_pending_actions(sandbox_config: Config) -> None:
    proxy = TcpProxy(sandbox_config.ami_host, sandbox_config.ami_port)
    await proxy.start()
    link = AmiLink(
        "127.0.0.1", proxy.port, sandbox_config.ami_user, sandbox_config.ami_secret,
        backoff=(0.05, 0.2),
    )  # fmt: skip
    await link.start()
    came_back = asyncio.Event()

    async def on_up() -> None:
        came_back.set()

    link.on_up(on_up)
    try:
        # An Originate to a phone that never answers stays pending until OriginateResponse.
        pending = link.submit(
            {
                "Action": "Originate", "Channel": "Local/2999@ivr-sim", "Application": "Wait",
                "Data": "1", "Timeout": "20000", "Async": "true",
            },
            timeout=30,
        )  # fmt: skip
        await asyncio.sleep(0)  # let the write reach the proxy
        proxy.cut()
        with pytest.raises(AmiDisconnected):
            await asyncio.wait_for(pending, 5)
        await asyncio.wait_for(link.wait_down(), 5)
        with pytest.raises(AmiNotConnected):
            await link.action({"Action": "Ping"})
        proxy.restore()
        await asyncio.wait_for(came_back.wait(), 10)
        assert link.is_up and link.generation == 2
        assert (await link.action({"Action": "Ping"})).success
    finally:
        await link.close()
        await proxy.close()


@pytest.mark.integration
async def test_kick_reconnects(ami: AmiLink) -> None:
    ami.kick()
    await asyncio.wait_for(ami.wait_down(), 5)
    await ami.wait_up(10)
    assert ami.generation == 2
