"""A small driver of Debian's headless Chromium over the DevTools protocol (aiohttp's
WebSocket client), for the console's browser tests: open a page, run JavaScript in it, wait
for a condition, log every request and every script error, take screenshots.

Ours rather than playwright's: playwright's own browser is a download, and the few calls the
tests need (evaluate, wait, screenshot, the request log) fit here with nothing to install but
the `chromium` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
#: axe-core, installed by scripts/setup from the npm registry.
AXE = Path(__file__).resolve().parents[1] / ".venv/node/node_modules/axe-core/axe.min.js"
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class ScriptError(AssertionError):
    """An expression the test ran threw."""


class Page:
    """One browser tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: Every URL the page requested, in order.
        self.requests: list[str] = []
        #: Uncaught errors of the page's own scripts.
        self.errors: list[str] = []

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                self.requests.append(data["params"]["request"]["url"])
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description", str(details)))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        await self._ws.send_json({"id": number, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer["result"]

    async def run(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise ScriptError(f"{expression}: {result['exceptionDetails']['exception']}")
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 15) -> Any:
        """Wait for a JavaScript expression to be true (an error counts as not yet): its value."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                value = await self.run(f"(() => {{ return {expression}; }})()")
            except ScriptError:
                value = None
            if value:
                return value
            if loop.time() > end:
                raise AssertionError(f"still false after {timeout} s: {expression}")
            await asyncio.sleep(0.05)

    async def text(self, selector: str) -> str:
        return str(await self.run(f"document.querySelector({json.dumps(selector)}).textContent"))

    async def click(self, selector: str) -> None:
        """Click an element the user could click: visible and enabled."""
        await self.until(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " return e && !e.disabled && e.offsetParent !== null; })()"
        )
        await self.run(f"document.querySelector({json.dumps(selector)}).click()")

    async def press(self, key: str) -> None:
        """A key pressed and released on the keyboard (`Enter`, `Escape`, `Tab`, ` `)."""
        codes = {"Enter": 13, "Escape": 27, "Tab": 9, " ": 32}
        text = {"Enter": "\r", " ": " "}.get(key, "")
        down = {"key": key, "code": "Space" if key == " " else key,
                "windowsVirtualKeyCode": codes[key], "text": text}  # fmt: skip
        await self.send("Input.dispatchKeyEvent", type="keyDown", **down)
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=down["code"],
                        windowsVirtualKeyCode=codes[key])  # fmt: skip

    async def accessibility(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is now: rule id, impact, elements."""
        if not await self.run("typeof axe !== 'undefined'"):
            # Through the debugger, not a <script>: the page's CSP loads nothing foreign.
            await self.run(await asyncio.to_thread(AXE.read_text, encoding="utf-8"))
        found = await self.run(
            "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations.map("
            "(v) => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map((n) => n.target.join(' '))})))"
        )
        return list(found)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def screenshot(self, path: Path) -> None:
        got = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(got["data"]))


@contextlib.asynccontextmanager
async def chromium(width: int = 1400, height: int = 1000) -> AsyncIterator[Page]:
    """A headless Chromium of its own (a fresh profile), and its first tab."""
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-port=0", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            url = None
            while url is None:
                line = await asyncio.wait_for(proc.stderr.readline(), 30)
                if not line:
                    raise AssertionError("chromium ended before it listened")
                found = _LISTENING.search(line.decode(errors="replace"))
                url = found.group(1) if found else None
            drain = asyncio.create_task(_drain(proc.stderr))
            port = url.split("/")[2].split(":")[1]
            async with aiohttp.ClientSession() as http:
                targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                target = next(t for t in targets if t["type"] == "page")
                async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = Page(ws)
                    reader = asyncio.create_task(page._read())
                    for domain in ("Runtime", "Page", "Network"):
                        await page.send(f"{domain}.enable")
                    try:
                        yield page
                    finally:
                        reader.cancel()
            drain.cancel()
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    # Chromium says a lot on stderr; read it so that it never blocks on a full pipe.
    while await stream.readline():
        pass
