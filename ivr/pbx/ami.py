"""The AMI link: one Asterisk Manager session over panoramisk, kept alive, with its pitfalls hidden.

What panoramisk 1.4 leaves to us is in docs/asterisk.md: our own Login (a wrong secret is an
`AmiAuthError`), a reconnect loop that never re-sends an action (one waiting when the link drops
fails with `AmiDisconnected`), per-action timeouts that do not leak, a checked Ping (half-open
TCP), event callbacks in order; the link is up only once Asterisk says FullyBooted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.message import Message

from ivr.config import Config
from ivr.errors import (
    AmiAuthError,
    AmiConnectError,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from ivr.pbx.manager import QuietManager

log = logging.getLogger(__name__)

EventHandler = Callable[[Message], None]
UpHandler = Callable[[], Awaitable[None]]

#: Seconds a login waits for Asterisk to finish booting before it counts as failed.
BOOT_TIMEOUT = 60.0
#: Event classes we ask for: call (Newchannel, Hangup, OriginateResponse), user (UserEvent),
#: system (Shutdown), dtmf (DTMFEnd: keys pressed while answering-machine detection runs).
EVENT_CLASSES = "system,call,user,dtmf"


class AmiLink:
    """One AMI session to one Asterisk, logged in, watched and reconnected with backoff.

    `start()` makes the first connection and raises `AmiConnectError`/`AmiAuthError` with a clear
    message when it fails; after that the link reconnects by itself. Handlers added with
    `on_up()` run after every successful login except the first, to reconcile state that events
    lost during an outage would have carried.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        secret: str,
        *,
        action_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        events: str = EVENT_CLASSES,
    ) -> None:
        self.host = host
        self.port = port
        self._user = user
        self._secret = secret
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.events = events
        self._manager: QuietManager | None = None
        self._event_handlers: list[EventHandler] = []
        self._up_handlers: list[UpHandler] = []
        self._pending: dict[str, Action] = {}
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        #: Set by the FullyBooted event of the current connection.
        self._booted = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Answer tasks handed out by `submit()` and not finished yet.
        self._answers: set[asyncio.Task[Any]] = set()
        #: How many logins this link has made; reconnects bump it.
        self.generation = 0

    @classmethod
    def for_config(cls, config: Config, **options: Any) -> AmiLink:
        """The link to IVR_AMI_HOST:IVR_AMI_PORT as IVR_AMI_USER, timed by IVR_AMI_TIMEOUT."""
        return cls(
            config.ami_host, config.ami_port, config.ami_user, config.ami_secret,
            action_timeout=config.ami_timeout, **options,
        )  # fmt: skip

    # -- public API ------------------------------------------------------------------------

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    def on_event(self, handler: EventHandler) -> None:
        """Call `handler(message)` for every AMI event not consumed by a pending action."""
        self._event_handlers.append(handler)

    def on_up(self, handler: UpHandler) -> None:
        """Run `await handler()` after each reconnect (not after the first login)."""
        self._up_handlers.append(handler)

    async def start(self) -> None:
        """Connect and log in once; raise a clear error if that fails. Then keep the link up."""
        await self._connect_once()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        """Log off and stop reconnecting; pending actions fail with AmiDisconnected."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._manager is not None and self.is_up:
            with contextlib.suppress(AmiError):
                await self.action({"Action": "Logoff"}, timeout=1.0)
        self._drop_connection()
        # Now, not a loop turn later when asyncio.run() may be cancelling tasks (docs/asterisk.md).
        self._fail_pending()
        if self._answers:
            await asyncio.wait(list(self._answers))

    async def wait_up(self, timeout: float | None = None) -> None:
        """Wait until the link is logged in; AmiTimeout after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            raise AmiTimeout(
                f"AMI link to {self.host}:{self.port} not up after {timeout} s"
            ) from None

    async def wait_down(self) -> None:
        """Return once the current connection is lost."""
        await self._lost.wait()

    async def action(
        self, fields: dict[str, Any], *, timeout: float | None = None, as_list: bool | None = None
    ) -> Any:
        """Send one action and return its answer (a Message, or a list for multi-part answers).

        Raises AmiNotConnected when the link is down (nothing was sent), AmiDisconnected when it
        drops before the answer, AmiTimeout when no answer comes within `timeout` (default: the
        link's action timeout).
        """
        return await self.submit(fields, timeout=timeout, as_list=as_list)

    def submit(
        self, fields: dict[str, Any], *, timeout: float | None = None, as_list: bool | None = None
    ) -> asyncio.Task[Any]:
        """Write one action now and return a task for its answer.

        Unlike `action()`, the write happens before this returns: AmiNotConnected raised here
        means nothing reached Asterisk, and any returned task means the action was sent.
        """
        manager = self._manager
        if manager is None or not self.is_up or manager.protocol is None:
            raise AmiNotConnected(f"AMI link to {self.host}:{self.port} is down")
        action, future = self._write(manager, fields, as_list)
        task = asyncio.ensure_future(self._answer(manager, action, future, timeout))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return task

    def kick(self) -> None:
        """Drop the TCP connection as if the network had failed (tests, half-open links)."""
        protocol = self._manager.protocol if self._manager is not None else None
        if (transport := getattr(protocol, "transport", None)) is not None:
            transport.abort()

    # -- internals -------------------------------------------------------------------------

    async def _send(
        self,
        manager: QuietManager,
        fields: dict[str, Any],
        *,
        timeout: float | None,
        as_list: bool | None,
    ) -> Any:
        action, future = self._write(manager, fields, as_list)
        return await self._answer(manager, action, future, timeout)

    def _write(
        self, manager: QuietManager, fields: dict[str, Any], as_list: bool | None
    ) -> tuple[Action, asyncio.Future[Any]]:
        action = Action(dict(fields), as_list=as_list)
        self._pending[action.id] = action
        future: asyncio.Future[Any] = manager.protocol.send(action, as_list=as_list)
        return action, future

    async def _answer(
        self,
        manager: QuietManager,
        action: Action,
        future: asyncio.Future[Any],
        timeout: float | None,
    ) -> Any:
        limit = self.action_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            # Forget it everywhere, or the protocol keeps it and swallows its late answer.
            self._forget(manager, action)
            raise AmiTimeout(
                f"AMI action {action.get('Action')} got no answer within {limit} s"
            ) from None
        finally:
            self._pending.pop(action.id, None)

    @staticmethod
    def _forget(manager: QuietManager, action: Action) -> None:
        responses = getattr(manager.protocol, "responses", {})
        responses.pop(action.id, None)
        if action.action_id:
            responses.pop(action.action_id, None)
        if not action.future.done():
            action.future.cancel()

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        manager = QuietManager(
            self._connection_lost,
            host=self.host,
            port=self.port,
            loop=loop,
            events=self.events,
            ping_delay=3600,
            ping_interval=3600,
            reconnect_timeout=3600,
        )
        manager.register_event("*", self._dispatch)
        # Cleared before connecting: a connection lost at once, even before the login, counts.
        self._lost.clear()
        self._booted.clear()
        try:
            await asyncio.wait_for(manager.connect(), self.connect_timeout)
        except TimeoutError:
            raise AmiConnectError(
                f"Asterisk AMI at {self.host}:{self.port}: no connection within "
                f"{self.connect_timeout} s (IVR_AMI_HOST / IVR_AMI_PORT)"
            ) from None
        except OSError as exc:
            raise AmiConnectError(
                f"Asterisk AMI at {self.host}:{self.port} unreachable: {exc.strerror or exc} "
                "(IVR_AMI_HOST / IVR_AMI_PORT)"
            ) from None
        self._manager = manager
        if self._lost.is_set():  # closed between the TCP handshake and now: no login to wait for
            raise AmiConnectError(f"Asterisk AMI at {self.host}:{self.port} closed the connection")
        await self._login(manager)
        await self._wait_booted()
        self.generation += 1
        self._up.set()
        self._spawn(self._keepalive(manager), "ami-keepalive")
        log.info("AMI link up to %s:%s (login %d)", self.host, self.port, self.generation)

    async def _login(self, manager: QuietManager) -> None:
        """Log in on a new connection; a refusal or silence is a clear error."""
        try:
            reply = await self._send(
                manager,
                {
                    "Action": "Login",
                    "Username": self._user,
                    "Secret": self._secret,
                    "Events": self.events,
                },
                timeout=self.connect_timeout,
                as_list=False,
            )
        except AmiTimeout:
            self._drop_connection()
            raise AmiConnectError(
                f"Asterisk AMI at {self.host}:{self.port}: no answer to Login "
                f"within {self.connect_timeout} s; is it an AMI port?"
            ) from None
        except AmiDisconnected:
            self._drop_connection()
            raise AmiConnectError(
                f"Asterisk AMI at {self.host}:{self.port} closed the connection during Login"
            ) from None
        if not reply.success:
            self._drop_connection()
            raise AmiAuthError(
                f"Asterisk AMI at {self.host}:{self.port} refused user {self._user!r}: "
                f"{reply.get('Message', 'authentication failed')} (IVR_AMI_USER / IVR_AMI_SECRET)"
            )

    async def _wait_booted(self) -> None:
        """Return once Asterisk is fully booted (only known with the `system` event class)."""
        if "system" not in self.events.split(","):
            return
        try:
            await asyncio.wait_for(self._booted.wait(), BOOT_TIMEOUT)
        except TimeoutError:
            self._drop_connection()
            raise AmiConnectError(
                f"Asterisk at {self.host}:{self.port} is not fully booted after {BOOT_TIMEOUT} s"
            ) from None

    async def _supervise(self) -> None:
        while not self._closing:
            await self._lost.wait()
            # Retry until logged in again, without waiting for `_lost` between attempts: an
            # attempt whose connection dropped before the login (an Asterisk restarting
            # accepts, then closes) must not leave the link waiting for a loss already past.
            delay = self.backoff[0]
            while not self._closing:
                try:
                    await self._connect_once()
                    break
                except AmiAuthError as exc:
                    log.error("%s; retrying in %.1f s", exc, self.backoff[1])
                    await asyncio.sleep(self.backoff[1])
                except AmiError as exc:
                    log.warning("%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff[1])
            if self._closing:
                return
            for handler in list(self._up_handlers):
                self._spawn(handler(), "ami-on-up")

    async def _keepalive(self, manager: QuietManager) -> None:
        while manager is self._manager and self.is_up:
            await asyncio.sleep(self.ping_interval)
            if manager is not self._manager or not self.is_up:
                return
            try:
                await self._send(
                    manager, {"Action": "Ping"}, timeout=self.ping_interval, as_list=False
                )
            except AmiTimeout:
                log.warning(
                    "AMI link to %s:%s does not answer Ping; reconnecting", self.host, self.port
                )
                self.kick()
                return
            except AmiDisconnected:
                return

    def _connection_lost(self, exc: Exception | None) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        self._lost.set()
        self._fail_pending()
        if was_up and not self._closing:
            log.warning("AMI link to %s:%s lost (%s)", self.host, self.port, exc or "closed")

    def _fail_pending(self) -> None:
        lost = f"AMI link to {self.host}:{self.port} lost"
        for action in [a for a in self._pending.values() if not a.future.done()]:
            action.future.set_exception(AmiDisconnected(lost))

    def _drop_connection(self) -> None:
        manager = self._manager
        if manager is None:
            return
        if manager.protocol is not None:
            transport = getattr(manager.protocol, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.abort()
        self._up.clear()

    def _dispatch(self, manager: Manager, message: Message) -> None:
        if message.get("Event") == "FullyBooted" and manager is self._manager:
            self._booted.set()
        for handler in self._event_handlers:
            try:
                handler(message)
            except Exception:
                log.exception("AMI event handler failed on %s", message.get("Event"))

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI background task %s failed", task.get_name(), exc_info=task.exception())
