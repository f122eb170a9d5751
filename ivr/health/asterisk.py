"""Health checks of the Asterisk side: the AMI (login with the service's credentials, Asterisk
fully booted) and the FastAGI port of the phone lines (our server answers on it)."""

from __future__ import annotations

import asyncio
import contextlib
import os

from ivr.config import Config
from ivr.errors import AmiAuthError, AmiConnectError, AmiError
from ivr.health.state import Check, State
from ivr.pbx import agi
from ivr.pbx.ami import AmiLink

#: Seconds the login may take, Asterisk's FullyBooted event included: the link counts as up only
#: once Asterisk has finished booting (`ivr.pbx.ami`), which a booted Asterisk says at once.
LOGIN_WAIT = 8.0


async def check_ami(config: Config) -> Check:
    """Log in as the service does; CRITICAL when refused, unreachable or not fully booted."""
    link = AmiLink.for_config(config, connect_timeout=min(5.0, config.ami_timeout))
    where = f"{config.ami_host}:{config.ami_port}"
    try:
        await asyncio.wait_for(link.start(), LOGIN_WAIT)
    except AmiAuthError:
        return Check(
            "ami",
            State.CRITICAL,
            f"Asterisk at {where} refused AMI user {config.ami_user!r} "
            "(IVR_AMI_SECRET wrong, or the user missing from manager.conf)",
        )
    except AmiConnectError as exc:
        return Check("ami", State.CRITICAL, str(exc))
    except TimeoutError:
        await link.close()
        return Check(
            "ami",
            State.CRITICAL,
            f"Asterisk at {where}: no login, or not fully booted, within {LOGIN_WAIT:g} s",
        )
    try:
        settings = await link.action({"Action": "CoreSettings"})
        version = str(settings.get("AsteriskVersion", ""))
    except AmiError:
        version = ""  # a detail: the login already proved the link
    finally:
        await link.close()
    shown = version.split("+", 1)[0] or "?"
    return Check(
        "ami",
        State.OK,
        f"Asterisk {shown} at {where}, fully booted, user {config.ami_user!r} logged in",
        details={"version": version},
    )


def agi_address(config: Config) -> tuple[str, int]:
    """Where to reach the FastAGI server from this host (a wildcard bind is reached on loopback)."""
    host = config.agi_host
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, config.agi_port


async def check_agi(config: Config, timeout: float = 5.0) -> Check:
    """The phone lines' FastAGI server answers on IVR_AGI_HOST:IVR_AGI_PORT, and it is ours."""
    host, port = agi_address(config)
    try:
        await agi_probe(host, port, timeout)
    except agi.AgiError as exc:
        return Check("agi", State.CRITICAL, f"phone lines: {exc}")
    return Check("agi", State.OK, f"phone lines served on {host}:{port}")


async def agi_probe(host: str, port: int, timeout: float = 5.0) -> None:
    """Check that an AgiServer of ours serves `host:port`: act as Asterisk handing it the
    HEALTH_SCRIPT call, and expect its NOOP (`ivr.pbx.agi`). Raise AgiError saying what was
    found instead."""
    where = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        # asyncio words a refusal "Connect call failed (...)": say it as the system does.
        reason = "no connection in time" if isinstance(exc, TimeoutError) else exc.strerror
        if isinstance(exc, OSError) and exc.errno:
            reason = os.strerror(exc.errno)
        raise agi.AgiError(
            f"nothing answers on {where} ({reason}): is `ivr worker` running?"
        ) from None
    try:
        writer.write(
            f"agi_network: yes\nagi_network_script: {agi.HEALTH_SCRIPT}\n"
            f"agi_request: agi://{where}/{agi.HEALTH_SCRIPT}\n\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if line.decode(errors="replace").strip() != f"NOOP {agi.HEALTH_SCRIPT}":
            raise agi.AgiError(f"{where} answers, but not as ivr's FastAGI server: {line[:60]!r}")
        writer.write(b"200 result=0\n")
        await writer.drain()
    except TimeoutError:
        raise agi.AgiError(
            f"{where} accepts connections but does not speak FastAGI within {timeout:g} s "
            "(another program on this port?)"
        ) from None
    except ConnectionError as exc:
        raise agi.AgiError(f"{where} closed the connection: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
