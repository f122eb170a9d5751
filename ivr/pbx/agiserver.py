"""The FastAGI server: Asterisk connects to `agi://host:port/<script>` for each call; the
server reads the AGI environment, runs the flow registered for `<script>` with an `AgiSession`
(`ivr.pbx.agi`, the protocol), and the call goes back to the dialplan when the flow returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ivr import logs
from ivr.errors import ConfigError
from ivr.pbx.agi import HEALTH_SCRIPT, AgiError, AgiHangup, AgiSession
from ivr.pbx.keys import KeyEvents

log = logging.getLogger(__name__)

#: Seconds a client has to send its environment.
HEADER_TIMEOUT = 5.0
#: Seconds close() gives each cancelled flow, and how many times it cancels one that runs on.
CLOSE_GRACE, CLOSE_TRIES = 5.0, 3


Handler = Callable[[AgiSession], Awaitable[None]]


class AgiServer:
    """Serves `agi://host:port/<script>`; `handlers` maps a script name to its flow."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keys: KeyEvents | None = None,
    ):
        self.handlers = handlers
        self.host = host
        self.port = port
        #: Where each call's keys come from (AMI events); None: AGI's own answers only.
        self.keys = keys
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        #: Where the flows that outlived a cancellation at close() waited (see close()).
        self.stragglers: list[str] = []

    async def start(self) -> int:
        """Listen; return the port (useful with port 0)."""
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise ConfigError(
                f"IVR_AGI_HOST/IVR_AGI_PORT: cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror or exc}"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%d", self.host, self.port)
        return self.port

    async def close(self) -> None:
        """Stop listening and cancel the calls' flows; one still running CLOSE_GRACE s later is
        logged with where it waits and cancelled again (3.11's `wait_for` can swallow a
        cancellation), then left: a shutdown must not hang on one call."""
        if self._server is not None:
            self._server.close()
        for _ in range(CLOSE_TRIES):
            if not self._sessions:
                break
            for task in self._sessions:
                task.cancel()
            _, pending = await asyncio.wait(set(self._sessions), timeout=CLOSE_GRACE)
            for task in pending:
                self.stragglers.append(logs.where(task))
                log.warning(
                    "FastAGI: a call's flow still runs %g s after it was cancelled, at %s",
                    CLOSE_GRACE,
                    self.stragglers[-1],
                )
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        session: AgiSession | None = None
        try:
            env = await asyncio.wait_for(_read_env(reader), HEADER_TIMEOUT)
            if env is None:
                return
            session = AgiSession(reader, writer, env)
            if session.script == HEALTH_SCRIPT:
                with contextlib.suppress(AgiError):
                    await session.command("NOOP", HEALTH_SCRIPT)
                return
            if self.keys is not None and session.uniqueid:
                session.keys = self.keys.open(session.uniqueid)
            logs.bind(channel=session.channel)  # this connection's own task
            handler = self.handlers.get(session.script)
            if handler is None:
                log.warning("FastAGI: no flow named %r", session.script)
                await session.hangup()
                return
            try:
                await handler(session)
            except AgiHangup:
                log.info("FastAGI %s: caller hung up", session.script)
            except Exception:
                log.exception("FastAGI %s failed", session.script)
                # The dialplan's next priority says sorry: never leave a caller in silence.
                with contextlib.suppress(AgiError):
                    await session.set_variable("IVR_NEXT", "error")
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(task)
            if session is not None and session.keys is not None:
                session.keys.close()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _read_env(reader: asyncio.StreamReader) -> dict[str, str] | None:
    env: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if not raw:
            return None  # closed before the header ended: nothing to run
        line = raw.decode(errors="replace").rstrip("\r\n")
        if not line:
            return env
        name, _, value = line.partition(":")
        env[name.strip()] = value.strip()
