"""The project's error hierarchy.

Every error carries structured fields; the CLI maps them to exit codes in one place
(`ivr.cli.exit_code_for`) and, later, the HTTP layer to status codes.
"""

from __future__ import annotations

from typing import Any


class IvrError(Exception):
    """Base class: a message meant for a human, plus an error id and details for machines."""

    error_id = "ivr_error"
    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(IvrError):
    """A configuration value is missing or wrong; the message names the key."""

    error_id = "config_error"
    exit_code = 2


class InputError(IvrError):
    """What a command was given cannot be used: a file that cannot be read or written, a value
    out of range, an empty or too long text."""

    error_id = "input_error"
    exit_code = 2


class InvalidNumberError(IvrError):
    """A phone number holds characters that could alter a dial string."""

    error_id = "invalid_number"
    exit_code = 2


class AmiError(IvrError):
    """The Asterisk Manager Interface could not do what was asked."""

    error_id = "ami_error"
    exit_code = 3


class AmiConnectError(AmiError):
    """Asterisk cannot be reached, or refused our credentials."""

    error_id = "ami_connect_error"


class AmiAuthError(AmiConnectError):
    """Asterisk refused the AMI user name or secret."""

    error_id = "ami_auth_error"


class AmiTimeout(AmiError):
    """An AMI action got no answer in time."""

    error_id = "ami_timeout"


class AmiDisconnected(AmiError):
    """The AMI link went down while an action was waiting for its answer."""

    error_id = "ami_disconnected"


class AmiNotConnected(AmiDisconnected):
    """The AMI link is down: the action was not sent."""

    error_id = "ami_not_connected"


class TtsError(IvrError):
    """Text-to-speech rendering failed or produced an unusable file."""

    error_id = "tts_error"
    exit_code = 4


class SandboxError(IvrError):
    """The embedded Asterisk sandbox or private redis-server could not be started."""

    error_id = "sandbox_error"
    exit_code = 5


class SmsRefused(IvrError):
    """An SMS gateway (or Asterisk on its way) refused one message: this number, this text.
    The message is not retried; the person's plan goes on."""

    error_id = "sms_refused"
    exit_code = 3


class SmsNotSent(IvrError):
    """The SMS link is down: nothing left, the message can go again later."""

    error_id = "sms_not_sent"
    exit_code = 3


class SmsLinkLost(IvrError):
    """The SMS link dropped before the gateway answered: sent or not, nobody knows."""

    error_id = "sms_link_lost"
    exit_code = 3
