"""Informative mail through a real mail server (aiosmtpd) and a real redis-server: once per
person, in their language, with the callback number; a server that is down or never answers
fails the mails in bounded time and nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import pytest
import redis.asyncio as aioredis
from aiosmtpd.controller import Controller

from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.keys import campaign_key
from ivr.sms.mail import Mailer
from tests.campaigntools import events, person, wait_events


class Inbox:
    """aiosmtpd's handler: every mail it accepts."""

    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.mails.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def config(port: int, timeout: float = 10) -> Config:
    return dataclasses.replace(
        Config(), smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        smtp_from="Cellule de crise <crise@chu.example>", smtp_timeout=timeout,
    )  # fmt: skip


PEOPLE = [
    person("a", "nurse", "2000", email="a@chu.example"),
    person("b", "nurse", "2001", email="b@chu.example", language="en"),
    person("c", "nurse", "2002"),
]
SPEC = CampaignSpec(
    messages={"fr": "Plan blanc déclenché.", "en": "White plan."},
    callback_number="0140000000", name="plan blanc",
)  # fmt: skip


async def test_each_person_with_an_address_gets_one_mail(
    db: aioredis.Redis, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    cid = await store.create(db, SPEC, PEOPLE)
    stop = asyncio.Event()
    # Two workers share the campaign: still one mail each.
    tasks = [asyncio.create_task(Mailer(db, config(port), name=n).run(stop)) for n in "xy"]
    await wait_events(db, cid, "mail", 2)
    stop.set()
    await asyncio.gather(*tasks)
    by_to = {m["To"]: m for m in inbox.mails}
    assert sorted(by_to) == ["a@chu.example", "b@chu.example"] and len(inbox.mails) == 2
    fr, en = by_to["a@chu.example"], by_to["b@chu.example"]
    assert fr["Subject"] == "Alerte : plan blanc" and en["Subject"] == "Alert: plan blanc"
    body = fr.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert body.startswith("Plan blanc déclenché.") and "0140000000" in body
    assert "http" not in body, "no link, no tracking"
    assert "White plan." in en.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert (await db.hgetall(campaign_key(cid, "counts")))["mail:sent"] == "2"


async def test_a_server_down_or_silent_fails_mails_in_bounded_time(db: aioredis.Redis) -> None:
    cid = await store.create(db, SPEC, PEOPLE)
    # Down: nothing listens on the port. Silent: accepts the connection, never greets.
    held: list[asyncio.StreamWriter] = []

    async def never_greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    for port, timeout in ((free_port(), 10.0), (silent_port, 1.0)):
        await db.delete(campaign_key(cid, "mail"))
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(Mailer(db, config(port, timeout), name="x").run(stop))
        await wait_events(db, cid, "mail", 2 if port != silent_port else 4)
        assert time.monotonic() - started < 2 * timeout + 2
        stop.set()
        await task
    for writer in held:
        writer.close()
    silent.close()
    await silent.wait_closed()
    results = [e["result"] for e in await events(db, cid) if e["type"] == "mail"]
    assert results == ["failed"] * 4
