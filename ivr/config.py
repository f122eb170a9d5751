"""Configuration: one frozen dataclass built from `IVR_*` environment variables.

An optional file (`IVR_CONFIG=/etc/ivr/ivr.env`, lines of `KEY=VALUE`, `#` comments) gives
defaults that the environment overrides. Every wrong or missing value raises a `ConfigError`
whose message names the key, so the CLI can print one clear line and exit non-zero. (A frozen
dataclass and small parsers rather than pydantic-settings: some twenty-five keys, messages in
the words of the commented example, each naming the variable as the operator typed it.)
See `docs/ivr.env.example` for every key, commented.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ivr import limits, redact
from ivr.envfile import read_env_file
from ivr.errors import ConfigError
from ivr.numbers import DIAL_STRING
from ivr.redact import url_password
from ivr.redisconfig import redis_url, sentinel_master, sentinels

LANGUAGES = ("fr", "en")
#: How the service logs: text lines, or one JSON object per line for a log collector.
LOG_FORMATS = ("text", "json")

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """Everything the service needs to reach Asterisk and Redis and to speak."""

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = ""
    ami_secret: str = field(default="", repr=False)
    #: Seconds an AMI action may wait for its answer.
    ami_timeout: float = 10.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis Sentinels (host, port) that name the primary; empty: IVR_REDIS_URL's server.
    #: With them, IVR_REDIS_URL gives only the database, the user and the password.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    #: The name the Sentinels monitor the primary under (`sentinel monitor NAME ...`).
    redis_sentinel_master: str = "ivr"
    #: Seconds after its lease that a call on an Asterisk no live worker dials through (a
    #: site lost) is ended and placed again from another site (`ivr.dialer.sites`).
    site_lost_after: int = 600
    #: Turns a staff number into an Asterisk channel; must contain `{number}`.
    dial_template: str = "PJSIP/{number}@trunk"
    caller_id: str = ""
    language: str = "fr"
    #: Seconds a callee's phone may ring before the attempt counts as `no_answer`.
    ring_timeout: int = 30
    max_channels: int = 30
    #: Where the service writes audio files.
    audio_dir: Path = Path("/var/lib/ivr/sounds")
    #: The same directory as Asterisk sees it (a chroot, a container, a shared volume).
    audio_dir_asterisk: Path = Path("/var/lib/ivr/sounds")
    #: Speech rate in words per minute; phone lines want slower than espeak's 175.
    tts_rate: int = 150
    tts_timeout: float = 30.0
    #: Where `ivr serve` listens: loopback unless told otherwise.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    #: Where the FastAGI server of the phone lines listens (Asterisk connects to it).
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    #: The scenario file of the trigger line (None: the packaged example).
    scenarios: Path | None = None
    #: Seconds a caller stays locked out after three wrong PINs.
    pin_lockout: int = 900
    #: Caller ids allowed on the trigger and report lines (empty: any, PIN still needed).
    trigger_callers: tuple[str, ...] = ()
    #: Hours after its end a campaign still takes answers on the callback line.
    callback_window: int = 12
    #: Dial strings `ivr selftest` calls, one per route, each to a phone that presses 1.
    selftest_targets: tuple[str, ...] = ()
    #: Dial strings `ivr selftest` calls, one per route, each to a number that answers busy.
    selftest_busy: tuple[str, ...] = ()
    #: `text` or `json` (one object per line, the campaign, attempt, worker, channel as fields).
    log_format: str = "text"
    #: SMS as SIP MESSAGE through Asterisk: the `To` with `{number}` (empty: none), the `From`,
    #: the gateway's ports and SMS per second on each (docs/ivr.env.example says more).
    sms_sip_to: str = ""
    sms_sip_from: str = ""
    sms_sip_ports: int = 1
    sms_sip_rate: float = 0.1
    #: SMS over SMPP 3.4 to a GSM gateway or an SMSC (empty host: none), as transceiver.
    sms_smpp_host: str = ""
    sms_smpp_port: int = 2775
    sms_smpp_system_id: str = ""
    sms_smpp_password: str = field(default="", repr=False)
    sms_smpp_source: str = ""
    sms_smpp_ports: int = 1
    sms_smpp_rate: float = 1.0
    #: The hospital's mail server for informative mails (empty: none), never waited for.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_timeout: float = 10.0

    @property
    def sms_ready(self) -> bool:
        """True when an SMS transport is configured: campaigns then default to the plan
        voice, SMS, voice (`ivr.campaign.plan`)."""
        return bool(self.sms_sip_to or self.sms_smpp_host)

    def asterisk_path(self, local: Path) -> str:
        """The path Asterisk must use for a file the service wrote under `audio_dir`."""
        try:
            relative = local.relative_to(self.audio_dir)
            if ".." in relative.parts:
                raise ValueError(local)
        except ValueError as exc:
            raise ConfigError(f"{local} is not under IVR_AUDIO_DIR ({self.audio_dir})") from exc
        return str(self.audio_dir_asterisk / relative)


def _int(key: str, low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key}: expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")
        return value

    return parse


def _within(key: str, bounds: limits.Range) -> Callable[[str], int]:
    return _int(key, int(bounds.low), int(bounds.high))


def _float(key: str, low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")
        return value

    return parse


def _dial_template(raw: str) -> str:
    if raw.count("{number}") != 1 or raw.replace("{number}", "").count("{") + raw.replace(
        "{number}", ""
    ).count("}"):
        raise ConfigError(
            "IVR_DIAL_TEMPLATE: must contain {number} exactly once and no other braces, "
            f"got {raw!r}"
        )
    if any(ch in raw for ch in "\r\n&,;"):
        raise ConfigError("IVR_DIAL_TEMPLATE: must not contain '&', ',', ';' or line breaks")
    return raw


def _sms_to(raw: str) -> str:
    rest = raw.replace("{number}", "")
    if raw.count("{number}") != 1 or not re.fullmatch(r"[A-Za-z0-9:@._/+=\-]*", rest):
        raise ConfigError(
            "IVR_SMS_SIP_TO: must contain {number} once and otherwise only letters, digits and "
            f":@._/+=- (such as pjsip:gateway/sip:{{number}}@192.168.10.20), got {raw!r}"
        )
    return raw


def _smpp_text(key: str, longest: int) -> Callable[[str], str]:
    """SMPP 3.4's C-octet strings: printable ASCII, `longest` characters at most."""
    # Never the value in the message: one of them is the password.
    return _matching(
        key,
        rf"[\x21-\x7e]{{1,{longest}}}",
        f"printable ASCII, {longest} characters at most",
        show=False,
    )


def _matching(key: str, pattern: str, problem: str, show: bool = True) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not re.fullmatch(pattern, raw):
            raise ConfigError(f"{key}: {problem}" + (f" {raw!r}" if show else ""))
        return raw

    return parse


def _yes_no(key: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        if raw.lower() not in ("yes", "no", "true", "false", "1", "0"):
            raise ConfigError(f"{key}: expected yes or no, got {raw!r}")
        return raw.lower() in ("yes", "true", "1")

    return parse


def _address(key: str) -> Callable[[str], str]:
    """A SIP or mail sender: `"Name" <sip:0123@host>`, `Crise <crise@chu.fr>`."""
    return _matching(key, r'[\w +"<>.:@\-]{3,200}', "unexpected characters in")


def _one_of(key: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def _caller_id(raw: str) -> str:
    if not re.fullmatch(r'[\w +"<>.\-]*', raw) or len(raw) > 80:
        raise ConfigError(f"IVR_CALLER_ID: unexpected characters in {raw!r}")
    return raw


def _directory(key: str) -> Callable[[str], Path]:
    def parse(raw: str) -> Path:
        path = Path(raw)
        if not path.is_absolute():
            raise ConfigError(f"{key}: must be an absolute path, got {raw!r}")
        return path

    return parse


def _text(key: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if any(ch in raw for ch in "\r\n"):
            raise ConfigError(f"{key}: must not contain line breaks")
        return raw

    return parse


def _host(key: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:_\-]{1,253}|\[[0-9A-Fa-f:.]+\]", raw):
            raise ConfigError(f"{key}: expected a host name or an IP address, got {raw!r}")
        return raw.strip("[]")

    return parse


def _callers(raw: str) -> tuple[str, ...]:
    numbers = tuple(n.strip() for n in raw.split(",") if n.strip())
    for number in numbers:
        if not re.fullmatch(r"\+?[0-9]{2,20}", number):
            raise ConfigError(f"IVR_TRIGGER_CALLERS: {number!r} is not a phone number")
    return numbers


def _targets(key: str) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        targets = tuple(t.strip() for t in raw.split(",") if t.strip())
        for target in targets:
            if not DIAL_STRING.fullmatch(target):
                raise ConfigError(
                    f"{key}: {target!r} is not a dial string "
                    "(TECH/resource, such as PJSIP/1000@trunk; no spaces, '&', ';' or braces)"
                )
        if len(set(targets)) != len(targets):
            raise ConfigError(f"{key}: a route is listed twice")
        if len(targets) > 50:
            raise ConfigError(f"{key}: at most 50 routes")
        return targets

    return parse


_log_format = _one_of("IVR_LOG_FORMAT", LOG_FORMATS)


def _settings(env: Mapping[str, str] | None) -> dict[str, str]:
    """The IVR_* settings: the IVR_CONFIG file's, overridden by the environment's."""
    environ = dict(os.environ if env is None else env)
    merged: dict[str, str] = {}
    if environ.get("IVR_CONFIG"):
        merged.update(read_env_file(Path(environ["IVR_CONFIG"])))
    merged.update({k: v for k, v in environ.items() if k.startswith("IVR_")})
    return merged


def log_format(env: Mapping[str, str] | None = None) -> str:
    """IVR_LOG_FORMAT alone: the CLI sets logging up before any command loads the rest."""
    raw = _settings(env).get("IVR_LOG_FORMAT", "").strip()
    return _log_format(raw) if raw else Config.log_format


def _take_redis(take: Callable[[str, str, Callable[[str], object]], None]) -> None:
    """Where Redis is (`ivr.redisconfig`)."""
    take("IVR_REDIS_URL", "redis_url", redis_url)
    take("IVR_REDIS_SENTINELS", "redis_sentinels", sentinels)
    take("IVR_REDIS_SENTINEL_MASTER", "redis_sentinel_master", sentinel_master)
    take("IVR_SITE_LOST_AFTER", "site_lost_after", _int("IVR_SITE_LOST_AFTER", 10, 3600))


def _check_redis(kwargs: Mapping[str, object]) -> None:
    if kwargs.get("redis_sentinels") and str(kwargs.get("redis_url", "")).startswith("unix:"):
        raise ConfigError(
            "IVR_REDIS_URL: a unix:// socket cannot go with IVR_REDIS_SENTINELS "
            "(Sentinel names the primary by host and port)"
        )


def _take_messaging(take: Callable[[str, str, Callable[[str], object]], None]) -> None:
    """The SMS gateways' and the mail server's keys."""
    take("IVR_SMS_SIP_TO", "sms_sip_to", _sms_to)
    take("IVR_SMS_SIP_FROM", "sms_sip_from", _address("IVR_SMS_SIP_FROM"))
    take("IVR_SMS_SIP_PORTS", "sms_sip_ports", _int("IVR_SMS_SIP_PORTS", 1, 64))
    take("IVR_SMS_SIP_RATE", "sms_sip_rate", _float("IVR_SMS_SIP_RATE", 0.001, 100))
    take("IVR_SMS_SMPP_HOST", "sms_smpp_host", _host("IVR_SMS_SMPP_HOST"))
    take("IVR_SMS_SMPP_PORT", "sms_smpp_port", _int("IVR_SMS_SMPP_PORT", 1, 65535))
    take("IVR_SMS_SMPP_SYSTEM_ID", "sms_smpp_system_id", _smpp_text("IVR_SMS_SMPP_SYSTEM_ID", 15))
    take("IVR_SMS_SMPP_PASSWORD", "sms_smpp_password", _smpp_text("IVR_SMS_SMPP_PASSWORD", 8))
    take("IVR_SMS_SMPP_SOURCE", "sms_smpp_source", _smpp_text("IVR_SMS_SMPP_SOURCE", 20))
    take("IVR_SMS_SMPP_PORTS", "sms_smpp_ports", _int("IVR_SMS_SMPP_PORTS", 1, 64))
    take("IVR_SMS_SMPP_RATE", "sms_smpp_rate", _float("IVR_SMS_SMPP_RATE", 0.001, 1000))
    take("IVR_SMTP_HOST", "smtp_host", _host("IVR_SMTP_HOST"))
    take("IVR_SMTP_PORT", "smtp_port", _int("IVR_SMTP_PORT", 1, 65535))
    take("IVR_SMTP_USER", "smtp_user", _text("IVR_SMTP_USER"))
    take("IVR_SMTP_PASSWORD", "smtp_password", _text("IVR_SMTP_PASSWORD"))
    take("IVR_SMTP_FROM", "smtp_from", _address("IVR_SMTP_FROM"))
    take("IVR_SMTP_STARTTLS", "smtp_starttls", _yes_no("IVR_SMTP_STARTTLS"))
    take("IVR_SMTP_TIMEOUT", "smtp_timeout", _float("IVR_SMTP_TIMEOUT", 1, 120))


def load_config(
    env: Mapping[str, str] | None = None, *, require_ami_credentials: bool = True
) -> Config:
    """Build the Config from `env` (default: os.environ) and the optional IVR_CONFIG file."""
    merged = _settings(env)
    kwargs: dict[str, object] = {}

    def take(key: str, attr: str, parse: Callable[[str], T]) -> None:
        raw = merged.get(key)
        if raw is None or raw == "":
            return
        kwargs[attr] = parse(raw.strip())

    take("IVR_AMI_HOST", "ami_host", _text("IVR_AMI_HOST"))
    take("IVR_AMI_PORT", "ami_port", _int("IVR_AMI_PORT", 1, 65535))
    take("IVR_AMI_USER", "ami_user", _text("IVR_AMI_USER"))
    take("IVR_AMI_SECRET", "ami_secret", _text("IVR_AMI_SECRET"))
    take("IVR_AMI_TIMEOUT", "ami_timeout", _float("IVR_AMI_TIMEOUT", 0.5, 300))
    _take_redis(take)
    take("IVR_DIAL_TEMPLATE", "dial_template", _dial_template)
    take("IVR_CALLER_ID", "caller_id", _caller_id)
    take("IVR_LANGUAGE", "language", _one_of("IVR_LANGUAGE", LANGUAGES))
    take("IVR_RING_TIMEOUT", "ring_timeout", _within("IVR_RING_TIMEOUT", limits.RING_TIMEOUT))
    take("IVR_MAX_CHANNELS", "max_channels", _within("IVR_MAX_CHANNELS", limits.CAPACITY))
    take("IVR_AUDIO_DIR", "audio_dir", _directory("IVR_AUDIO_DIR"))
    take("IVR_AUDIO_DIR_ASTERISK", "audio_dir_asterisk", _directory("IVR_AUDIO_DIR_ASTERISK"))
    take("IVR_TTS_RATE", "tts_rate", _int("IVR_TTS_RATE", 80, 400))
    take("IVR_TTS_TIMEOUT", "tts_timeout", _float("IVR_TTS_TIMEOUT", 1, 600))
    take("IVR_HTTP_HOST", "http_host", _host("IVR_HTTP_HOST"))
    take("IVR_HTTP_PORT", "http_port", _int("IVR_HTTP_PORT", 1, 65535))
    take("IVR_AGI_HOST", "agi_host", _host("IVR_AGI_HOST"))
    take("IVR_AGI_PORT", "agi_port", _int("IVR_AGI_PORT", 1, 65535))
    take("IVR_SCENARIOS", "scenarios", _directory("IVR_SCENARIOS"))
    take("IVR_PIN_LOCKOUT", "pin_lockout", _int("IVR_PIN_LOCKOUT", 10, 86400))
    take("IVR_TRIGGER_CALLERS", "trigger_callers", _callers)
    take("IVR_CALLBACK_WINDOW", "callback_window", _int("IVR_CALLBACK_WINDOW", 0, 720))
    take("IVR_SELFTEST_TARGETS", "selftest_targets", _targets("IVR_SELFTEST_TARGETS"))
    take("IVR_SELFTEST_BUSY", "selftest_busy", _targets("IVR_SELFTEST_BUSY"))
    take("IVR_LOG_FORMAT", "log_format", _log_format)
    _take_messaging(take)
    if "audio_dir" in kwargs and "audio_dir_asterisk" not in kwargs:
        kwargs["audio_dir_asterisk"] = kwargs["audio_dir"]
    _check_redis(kwargs)
    if require_ami_credentials:
        for key, attr in (("IVR_AMI_USER", "ami_user"), ("IVR_AMI_SECRET", "ami_secret")):
            if not kwargs.get(attr):
                raise ConfigError(f"{key}: missing (set it in the environment or in IVR_CONFIG)")
    config = Config(**kwargs)  # type: ignore[arg-type]
    if config.sms_smpp_host and not config.sms_smpp_system_id:
        raise ConfigError("IVR_SMS_SMPP_SYSTEM_ID: missing (IVR_SMS_SMPP_HOST is set)")
    # Whatever prints or logs from now on masks them (ivr.redact).
    redact.register(
        config.ami_secret, url_password(config.redis_url), config.sms_smpp_password,
        config.smtp_password,
    )  # fmt: skip
    return config
