"""Property-based fuzz of the API from its own OpenAPI document (schemathesis): valid and
invalid inputs on every operation, with an admin token, against the real service on a free port
and a real redis-server. No answer may be a 500, and answers must match the document.

The service runs in a thread with its own event loop: schemathesis calls it synchronously with
`requests`, which keeps hypothesis and pytest-asyncio out of each other's way.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ivr import __version__
from ivr.access.tokens import Role, TokenStore
from ivr.api import openapi
from ivr.api.app import ROUTES, make_app
from ivr.config import Config
from ivr.db import connect
from ivr.sandbox.redisserver import RedisServer
from tests.api.test_http import ROSTER, free_port
from tests.conftest import unavailable

#: Examples per operation: enough to find a 500, bounded to keep the run short.
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(openapi.document(ROUTES, version=__version__))
# A live stream never ends by design; its auth and errors are tested in test_console.py.
schema = schema.exclude(path_regex=r"/stream$")


@dataclass
class Served:
    url: str
    token: str


class ServiceThread:
    """`make_app` on 127.0.0.1:`port`, in a thread with its own event loop."""

    def __init__(self, redis_url: str, port: int) -> None:
        self.redis_url, self.port = redis_url, port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fuzzed-service", daemon=True)
        self.token = ""

    def _run(self) -> None:
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.db = connect(self.redis_url)
        self.token = await TokenStore(self.db).create("fuzz", Role.admin)
        self.runner = web.AppRunner(make_app(Config(), self.db))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.db.aclose()

    def __enter__(self) -> ServiceThread:
        self.thread.start()
        assert self.ready.wait(10), "the service did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    try:
        with ServiceThread(server.url, free_port()) as service:
            url = f"http://127.0.0.1:{service.port}"
            served = Served(url, service.token)
            # Something to find: a roster and a campaign (id 1) the fuzzer's ids can hit.
            auth = {"Authorization": f"Bearer {served.token}"}
            got = requests.post(f"{url}/api/roster", data=ROSTER.encode(), headers=auth, timeout=10)
            assert got.status_code == 200, got.text
            body = {"messages": {"fr": "Alerte."}}
            got = requests.post(f"{url}/api/campaigns", json=body, headers=auth, timeout=10)
            assert got.status_code == 201, got.text
            yield served
    finally:
        server.stop()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    database=None,  # nothing written under the work tree
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_from_its_openapi_document(case: Any, served: Served) -> None:
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {served.token}"},
        checks=CHECKS,
        timeout=10,
    )
