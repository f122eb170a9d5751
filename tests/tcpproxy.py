"""A TCP proxy that a test can cut, to take the AMI link down as a network failure would, or
slow, to make a Redis round trip late at the worst moment, or lose the reply to one request."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new
    ones until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.open = True
        self.port = 0
        self.connections = 0
        #: Seconds each reply from the target is held back (a slow network, a busy server).
        self.delay = 0.0
        #: `lose_reply_to`: the marker, then set when its request went through.
        self._lose: bytes | None = None
        self.request_passed = asyncio.Event()
        self._release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def cut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    def lose_reply_to(self, marker: bytes) -> asyncio.Event:
        """The next request containing `marker` reaches the server; its reply is held back,
        `request_passed` set, and once the returned event is set the connection is cut: the
        server did the work, the client never hears it did."""
        self._lose = marker
        self.request_passed.clear()
        self._release.clear()
        return self._release

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        losing: list[bool] = []  # this connection's request carried the marker
        for src, dst, late in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.ensure_future(self._pipe(src, dst, late, losing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, late: bool, losing: list[bool]
    ) -> None:
        tail = b""  # the end of the previous read: a marker may straddle two
        try:
            while data := await src.read(65536):
                if not late and self._lose is not None and self._lose in tail + data:
                    self._lose = None
                    losing.append(True)
                tail = data[-64:]
                if late and losing:
                    self.request_passed.set()
                    await self._release.wait()
                    break  # the reply is dropped with the connection
                if late and self.delay:
                    await asyncio.sleep(self.delay)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(dst)
            dst.transport.abort()
