"""API tokens: stored hashed, listed without secrets, revoked at once; `ivr token` on the CLI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr import cli, keys
from ivr.access import tokens
from ivr.access.tokens import Role, TokenError, TokenStore
from ivr.db import connect
from ivr.sandbox.redisserver import RedisServer


def test_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["viewer", "operator", "admin"]
    assert Role.admin.allows(Role.operator) and Role.operator.allows(Role.operator)
    assert not Role.viewer.allows(Role.operator) and not Role.operator.allows(Role.admin)
    assert tokens.parse_role("admin") is Role.admin
    with pytest.raises(TokenError, match="viewer, operator, admin"):
        tokens.parse_role("root")


async def test_create_stores_only_the_digest(db: aioredis.Redis) -> None:
    store = TokenStore(db)
    token = await store.create("alice", Role.operator)
    assert token.startswith("ivr_") and len(token) >= 40
    dump = json.dumps(
        {
            "hashes": await db.hgetall(keys.token_hashes_key),
            "names": await db.hgetall(keys.token_names_key),
        }
    )
    assert token not in dump and token[4:] not in dump
    assert tokens.digest(token) in dump
    info = await store.lookup(token)
    assert info is not None and (info.name, info.role, info.revoked_at) == (
        "alice",
        Role.operator,
        None,
    )


async def test_tokens_are_random_and_unknown_ones_refused(db: aioredis.Redis) -> None:
    store = TokenStore(db)
    one = await store.create("a", Role.viewer)
    two = await store.create("b", Role.viewer)
    assert one != two
    for bad in ("", "ivr_", one + "x", one[:-1], "Bearer " + one, "ivr_" + "x" * 500):
        assert await store.lookup(bad) is None


async def test_list_has_no_secrets(db: aioredis.Redis) -> None:
    store = TokenStore(db)
    secret = await store.create("zoe", Role.admin)
    await store.create("bob", Role.viewer)
    listed = await store.list()
    assert [(i.name, i.role) for i in listed] == [("bob", Role.viewer), ("zoe", Role.admin)]
    assert secret not in json.dumps([i.as_dict() for i in listed])
    assert set(listed[0].as_dict()) == {"name", "role", "created_at", "revoked_at"}


async def test_revoke_marks_the_token_and_frees_the_name(db: aioredis.Redis) -> None:
    store = TokenStore(db)
    old = await store.create("alice", Role.admin)
    with pytest.raises(TokenError, match="already has a token"):
        await store.create("alice", Role.viewer)
    await store.revoke("alice")
    info = await store.lookup(old)
    assert info is not None and info.revoked_at is not None, "revoked, not forgotten"
    assert await store.list() == []
    with pytest.raises(TokenError, match="no live token"):
        await store.revoke("alice")
    new = await store.create("alice", Role.viewer)
    info = await store.lookup(new)
    assert info is not None and info.revoked_at is None and info.role is Role.viewer


@pytest.mark.parametrize("name", ["", " ", "a b", "x" * 65, "é", "-lead", "a\nb", "a;b"])
async def test_bad_names_refused(db: aioredis.Redis, name: str) -> None:
    with pytest.raises(TokenError, match="must be 1-64"):
        await TokenStore(db).create(name, Role.viewer)


# -- the CLI (synchronous: main() runs its own event loop) -----------------------------


def _run(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    monkeypatch.setenv("IVR_REDIS_URL", url)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    return cli.main(list(argv))


def test_cli_create_list_revoke(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, redis_server.url, "token", "create", "cell", "--role", "admin") == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("ivr_") and "shown once" in out.err

    assert _run(monkeypatch, redis_server.url, "token", "list") == 0
    listed = capsys.readouterr().out
    assert "cell\tadmin" in listed and token not in listed

    assert _run(monkeypatch, redis_server.url, "token", "create", "cell", "--role", "viewer") == 2
    assert "already has a token" in capsys.readouterr().err
    assert _run(monkeypatch, redis_server.url, "token", "revoke", "cell") == 0
    assert _run(monkeypatch, redis_server.url, "token", "revoke", "cell") == 2
    assert "no live token" in capsys.readouterr().err

    async def check() -> tuple[object, list[str]]:
        db = connect(redis_server.url)
        try:
            info = await TokenStore(db).lookup(token)
            entries: Any = await db.xrange(keys.audit_key)
            return info, [fields["action"] for _, fields in entries]
        finally:
            await db.aclose()

    info, actions = asyncio.run(check())
    assert isinstance(info, tokens.TokenInfo) and info.revoked_at is not None
    assert actions == ["token.create", "token.revoke"], "every token change is audited"


def test_cli_role_is_required(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _run(monkeypatch, redis_server.url, "token", "create", "x", "--role", "root")
    assert "invalid choice" in capsys.readouterr().err
