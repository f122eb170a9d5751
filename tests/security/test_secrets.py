"""Secrets never reach a terminal or a log: the AMI secret, the Redis URL's password, tokens.

The attack: `ivr config` printed the Redis password in clear; any error or log line that
quotes a URL or a setting could do the same. One redaction (`ivr.redact`) is used by every
printer and logger: these tests set secrets and read everything the commands write.
"""

from __future__ import annotations

import json
import logging

import pytest

from ivr import logs, redact
from ivr.cli.main import main
from ivr.config import load_config
from ivr.sandbox.redisserver import free_port

PASSWORD = "Sup3r-S3cret:pw@x"
AMI_SECRET = "ami-secret-7f3c9b21"
URL = f"redis://:{PASSWORD.replace('@', '%40').replace(':', '%3A')}@127.0.0.1:{{port}}/0"


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> str:
    url = URL.format(port=free_port())  # nothing listens there
    for key, value in {
        "IVR_REDIS_URL": url,
        "IVR_AMI_USER": "ivr",
        "IVR_AMI_SECRET": AMI_SECRET,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    return url


def clean(text: str) -> None:
    for secret in (AMI_SECRET, "Sup3r-S3cret", "Sup3r-S3cret%3Apw%40x"):
        assert secret not in text, text


def test_ivr_config_hides_every_secret(
    secrets_set: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    clean(out + err)
    assert "redis_url = redis://:***@127.0.0.1:" in out and "ami_secret = (set)" in out


@pytest.mark.parametrize("command", [["campaign", "status"], ["roster", "export"]])
def test_errors_name_the_server_not_its_password(
    secrets_set: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main(command) == 6  # Redis unreachable
    out, err = capsys.readouterr()
    clean(out + err)
    assert err.startswith("ivr: error: Redis (redis://:***@127.0.0.1:")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_mask_the_configured_secrets(
    secrets_set: str, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    config = load_config()  # registers the secrets
    logs.configure(logging.DEBUG, fmt)
    log = logging.getLogger("ivr.test")
    log.warning("connecting to %s with %s", config.redis_url, config.ami_secret)
    log.info("GET /api/campaigns/1/stream?token=abcdef123456&x=1")
    err = capsys.readouterr().err
    clean(err)
    assert "abcdef123456" not in err
    assert "connecting to redis://:***@127.0.0.1:" in err and "with ***" in err
    if fmt == "json":
        messages = [json.loads(line)["message"] for line in err.splitlines()]
        assert messages[1] == "GET /api/campaigns/1/stream?token=***&x=1"


def test_redact_rules() -> None:
    redact.register("abc", "s3cret-value")  # too short to be treated as a secret: kept
    assert redact.redact("abc s3cret-value") == "abc ***"
    assert (
        redact.safe_url("redis://u:p%40ss@h:1/0?password=x") == "redis://u:***@h:1/0?password=***"
    )
    # A stream ticket is single use and short, but a log is not the place for it either.
    assert redact.redact("GET /s?ticket=ivrt_abc&x=1") == "GET /s?ticket=***&x=1"
