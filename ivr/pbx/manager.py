"""panoramisk's Manager with its own reconnect, login, ping and re-send turned off: `AmiLink`
(ivr.pbx.ami) does each of these itself (docs/asterisk.md says why)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, but a connection closed before it was handed to its manager
    (a connect cancelled as it completed: the service stopping while it reaches Asterisk)
    closes quietly instead of raising in the event loop (`self.factory` is still None)."""

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "factory", None) is None:
            self.closed = True
            return
        super().connection_lost(exc)


class QuietManager(Manager):  # type: ignore[misc]
    """A Manager that only carries messages; `on_lost` hears that the connection is gone."""

    def __init__(self, on_lost: Callable[[Exception | None], None], **config: Any) -> None:
        super().__init__(protocol_factory=_Protocol, **config)
        self._on_lost = on_lost

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        # A failed TCP connect is handled by AmiLink, which awaits the same task; panoramisk
        # would schedule its own retry here.
        if f.cancelled() or f.exception() is not None:
            return
        super().connection_made(f)

    def ping(self) -> None:
        """Disabled: AmiLink pings and checks the reply."""

    async def send_awaiting_actions(self, *_: Any) -> None:
        # Never re-send after a reconnect: an Originate sent twice calls someone twice.
        self.awaiting_actions.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.awaiting_actions.clear()
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
        self._on_lost(exc)
