"""Configuration from IVR_* variables and the IVR_CONFIG file; one clear line per wrong key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import Config, load_config, log_format
from ivr.envfile import read_env_file
from ivr.errors import ConfigError

CREDENTIALS = {"IVR_AMI_USER": "ivr", "IVR_AMI_SECRET": "s3cret-Zq8"}


def load(**env: str) -> Config:
    return load_config({**CREDENTIALS, **env})


def test_defaults() -> None:
    config = load_config({}, require_ami_credentials=False)
    assert config == Config()
    assert (config.ami_host, config.ami_port) == ("127.0.0.1", 5038)
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.dial_template == "PJSIP/{number}@trunk"
    assert (config.language, config.ring_timeout, config.max_channels) == ("fr", 30, 30)
    assert config.audio_dir == config.audio_dir_asterisk == Path("/var/lib/ivr/sounds")
    assert config.log_format == log_format({}) == "text"


def test_credentials_read() -> None:
    config = load()
    assert (config.ami_user, config.ami_secret) == ("ivr", "s3cret-Zq8")
    assert "s3cret-Zq8" not in repr(config)


@pytest.mark.parametrize(
    ("key", "raw", "attr", "expected"),
    [
        ("IVR_AMI_HOST", "asterisk.local", "ami_host", "asterisk.local"),
        ("IVR_AMI_PORT", "15038", "ami_port", 15038),
        ("IVR_AMI_PORT", " 15038 ", "ami_port", 15038),
        ("IVR_AMI_TIMEOUT", "2.5", "ami_timeout", 2.5),
        ("IVR_REDIS_URL", "redis://db:6380/2", "redis_url", "redis://db:6380/2"),
        ("IVR_REDIS_URL", "rediss://db/0", "redis_url", "rediss://db/0"),
        ("IVR_REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
        (
            "IVR_REDIS_SENTINELS",
            "10.0.1.5:26379, sentinel-b:26380,[fd00::3]:26379,",
            "redis_sentinels",
            (("10.0.1.5", 26379), ("sentinel-b", 26380), ("fd00::3", 26379)),
        ),
        ("IVR_REDIS_SENTINEL_MASTER", "ivr-site_a.1", "redis_sentinel_master", "ivr-site_a.1"),
        ("IVR_DIAL_TEMPLATE", "SIP/{number}@gw", "dial_template", "SIP/{number}@gw"),
        ("IVR_CALLER_ID", '"Hopital" <0100>', "caller_id", '"Hopital" <0100>'),
        ("IVR_LANGUAGE", "en", "language", "en"),
        ("IVR_RING_TIMEOUT", "5", "ring_timeout", 5),
        ("IVR_RING_TIMEOUT", "300", "ring_timeout", 300),
        ("IVR_MAX_CHANNELS", "120", "max_channels", 120),
        ("IVR_AUDIO_DIR", "/srv/sounds", "audio_dir", Path("/srv/sounds")),
        ("IVR_AUDIO_DIR_ASTERISK", "/ast/sounds", "audio_dir_asterisk", Path("/ast/sounds")),
        ("IVR_TTS_RATE", "120", "tts_rate", 120),
        ("IVR_TTS_TIMEOUT", "45", "tts_timeout", 45.0),
        ("IVR_AGI_HOST", "10.0.0.5", "agi_host", "10.0.0.5"),
        ("IVR_AGI_PORT", "14573", "agi_port", 14573),
        ("IVR_SCENARIOS", "/etc/ivr/s.toml", "scenarios", Path("/etc/ivr/s.toml")),
        ("IVR_PIN_LOCKOUT", "600", "pin_lockout", 600),
        ("IVR_TRIGGER_CALLERS", "0611, +33612 ,", "trigger_callers", ("0611", "+33612")),
        ("IVR_CALLBACK_WINDOW", "0", "callback_window", 0),
        ("IVR_LOG_FORMAT", "json", "log_format", "json"),
        ("IVR_LOG_FORMAT", "text", "log_format", "text"),
    ],
)
def test_each_key_parsed(key: str, raw: str, attr: str, expected: object) -> None:
    assert getattr(load(**{key: raw}), attr) == expected


def test_empty_value_keeps_the_default() -> None:
    assert load(IVR_AMI_PORT="", IVR_LANGUAGE="").ami_port == 5038


def test_other_variables_ignored() -> None:
    assert load(AMI_PORT="nope", PATH="/bin").ami_port == 5038


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("IVR_AMI_PORT", "abc"),
        ("IVR_AMI_PORT", "5038.0"),
        ("IVR_AMI_PORT", "0"),
        ("IVR_AMI_PORT", "70000"),
        ("IVR_AMI_PORT", " "),
        ("IVR_AMI_HOST", "host\nname"),
        ("IVR_AMI_TIMEOUT", "soon"),
        ("IVR_AMI_TIMEOUT", "nan"),
        ("IVR_RING_TIMEOUT", "4"),
        ("IVR_RING_TIMEOUT", "301"),
        ("IVR_RING_TIMEOUT", "thirty"),
        ("IVR_MAX_CHANNELS", "0"),
        ("IVR_LANGUAGE", "de"),
        ("IVR_LANGUAGE", "FR"),
        ("IVR_DIAL_TEMPLATE", "PJSIP/0612@trunk"),
        ("IVR_DIAL_TEMPLATE", "PJSIP/{number}&PJSIP/{number}@trunk"),
        ("IVR_DIAL_TEMPLATE", "PJSIP/{number}@trunk&PJSIP/999@trunk"),
        ("IVR_DIAL_TEMPLATE", "PJSIP/{number}\n@trunk"),
        ("IVR_DIAL_TEMPLATE", "PJSIP/{number}@{trunk}"),
        ("IVR_CALLER_ID", "ivr\nCallerID: spoof"),
        ("IVR_AUDIO_DIR", "sounds"),
        ("IVR_AUDIO_DIR", "./sounds"),
        ("IVR_AUDIO_DIR_ASTERISK", "var/sounds"),
        ("IVR_REDIS_URL", "localhost:6379"),
        ("IVR_REDIS_URL", "http://localhost:6379"),
        ("IVR_REDIS_SENTINELS", "10.0.1.5"),
        ("IVR_REDIS_SENTINELS", "10.0.1.5:0"),
        ("IVR_REDIS_SENTINELS", "10.0.1.5:65536"),
        ("IVR_REDIS_SENTINELS", "a b:26379"),
        ("IVR_REDIS_SENTINELS", "s:26379,s:26379"),
        ("IVR_REDIS_SENTINELS", ",,"),
        ("IVR_REDIS_SENTINEL_MASTER", "ivr master"),
        ("IVR_REDIS_SENTINEL_MASTER", "ivr\nSENTINEL"),
        ("IVR_TTS_RATE", "20"),
        ("IVR_AGI_PORT", "0"),
        ("IVR_AGI_HOST", "a b"),
        ("IVR_SCENARIOS", "scenarios.toml"),
        ("IVR_PIN_LOCKOUT", "5"),
        ("IVR_TRIGGER_CALLERS", "0611,06-12"),
        ("IVR_TRIGGER_CALLERS", "director"),
        ("IVR_CALLBACK_WINDOW", "-1"),
        ("IVR_LOG_FORMAT", "JSON"),
        ("IVR_LOG_FORMAT", "logfmt"),
    ],
)
def test_wrong_value_names_the_key(key: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**{key: raw})
    assert str(info.value).startswith(f"{key}:")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "IVR_AMI_USER"),
        ({"IVR_AMI_SECRET": "s"}, "IVR_AMI_USER"),
        ({"IVR_AMI_USER": "u"}, "IVR_AMI_SECRET"),
        ({"IVR_AMI_USER": "u", "IVR_AMI_SECRET": ""}, "IVR_AMI_SECRET"),
        ({"IVR_AMI_USER": "  ", "IVR_AMI_SECRET": "s"}, "IVR_AMI_USER"),
    ],
)
def test_missing_credentials(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env)
    assert str(info.value).startswith(f"{missing}: missing")


def test_credentials_optional_when_not_required() -> None:
    config = load_config({}, require_ami_credentials=False)
    assert (config.ami_user, config.ami_secret) == ("", "")


def test_audio_dir_asterisk_defaults_to_audio_dir() -> None:
    config = load(IVR_AUDIO_DIR="/srv/sounds")
    assert config.audio_dir_asterisk == Path("/srv/sounds")
    both = load(IVR_AUDIO_DIR="/srv/sounds", IVR_AUDIO_DIR_ASTERISK="/chroot/sounds")
    assert both.audio_dir_asterisk == Path("/chroot/sounds")


def test_asterisk_path_maps_under_audio_dir() -> None:
    config = Config(audio_dir=Path("/a"), audio_dir_asterisk=Path("/srv/ast"))
    assert config.asterisk_path(Path("/a/b/x")) == "/srv/ast/b/x"
    assert Config(audio_dir=Path("/a")).asterisk_path(Path("/a/x")) == "/var/lib/ivr/sounds/x"


@pytest.mark.parametrize("outside", ["/other/x", "/ab/x", "b/x"])
def test_asterisk_path_outside_audio_dir_refused(outside: str) -> None:
    config = Config(audio_dir=Path("/a"), audio_dir_asterisk=Path("/srv/ast"))
    with pytest.raises(ConfigError, match="not under IVR_AUDIO_DIR"):
        config.asterisk_path(Path(outside))


# The IVR_CONFIG file.


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.env"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_values_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "IVR_AMI_USER=fileuser\nIVR_AMI_SECRET=filesecret\nIVR_AMI_PORT=6038\nIVR_LANGUAGE=en\n",
    )
    config = load_config({"IVR_CONFIG": str(path)})
    assert (config.ami_user, config.ami_secret) == ("fileuser", "filesecret")
    assert (config.ami_port, config.language) == (6038, "en")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "IVR_AMI_PORT=6038\nIVR_LANGUAGE=en\n")
    config = load(IVR_CONFIG=str(path), IVR_AMI_PORT="7038")
    assert (config.ami_port, config.language) == (7038, "en")


def test_wrong_value_in_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "IVR_AMI_PORT=seventy\n")
    with pytest.raises(ConfigError) as info:
        load(IVR_CONFIG=str(path))
    assert str(info.value).startswith("IVR_AMI_PORT:")


def test_file_syntax(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# Asterisk\n"
        "\n"
        "   \n"
        "  # indented comment\n"
        'IVR_AMI_USER="quoted user"\n'
        "IVR_AMI_SECRET='a=b#c'\n"
        "export IVR_AMI_HOST=pbx.local\n"
        "IVR_CALLER_ID = 'Hopital'\n"
        "IVR_REDIS_URL=\"redis://db/1'\n",
    )
    assert read_env_file(path) == {
        "IVR_AMI_USER": "quoted user",
        "IVR_AMI_SECRET": "a=b#c",
        "IVR_AMI_HOST": "pbx.local",
        "IVR_CALLER_ID": "Hopital",
        "IVR_REDIS_URL": "\"redis://db/1'",  # mismatched quotes are kept
    }


@pytest.mark.parametrize(
    "bad_line", ["IVR_AMI_PORT 5038", "ivr_ami_port=5038", "=5038", "IVR AMI=1", "export"]
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = write(tmp_path, f"# header\nIVR_AMI_USER=ivr\n{bad_line}\n")
    with pytest.raises(ConfigError) as info:
        load_config({"IVR_CONFIG": str(path)})
    message = str(info.value)
    assert message.startswith("IVR_CONFIG:")
    assert f"{path}:3:" in message


@pytest.mark.parametrize("name", ["missing.env", "."])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError) as info:
        load(IVR_CONFIG=str(path))
    assert str(info.value).startswith("IVR_CONFIG:")
    assert str(path) in str(info.value)


def test_file_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ivr.env"
    path.write_bytes("IVR_CALLER_ID=H\xf4pital\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="^IVR_CONFIG:"):
        load(IVR_CONFIG=str(path))


def test_empty_ivr_config_ignored() -> None:
    assert load(IVR_CONFIG="").ami_port == 5038


# `ivr config`: the CLI's view of the same errors.


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("IVR_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_cli_config_missing_secret(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("IVR_AMI_USER", "ivr")
    assert main(["config"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ivr: error: IVR_AMI_SECRET")
    assert out == ""


def test_cli_config_hides_the_secret(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("IVR_AMI_USER", "ivr")
    clean_env.setenv("IVR_AMI_SECRET", "s3cret-Zq8")
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    assert "s3cret-Zq8" not in out + err
    assert "ami_secret = (set)" in out
    assert "ami_user = ivr" in out
    assert "redis_sentinels = (none)" in out
    clean_env.setenv("IVR_REDIS_SENTINELS", "10.0.1.5:26379,[fd00::3]:26380")
    assert main(["config"]) == 0
    assert "redis_sentinels = 10.0.1.5:26379,[fd00::3]:26380\n" in capsys.readouterr().out


def test_cli_config_hides_the_redis_password(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("IVR_AMI_USER", "ivr")
    clean_env.setenv("IVR_AMI_SECRET", "s3cret-Zq8")
    clean_env.setenv("IVR_REDIS_URL", "redis://:pa@ss-Wq7@db.example:6380/2")
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    assert "pa@ss-Wq7" not in out + err and "ss-Wq7" not in out + err
    assert "redis_url = redis://:***@db.example:6380/2" in out


def test_sms_settings_checked_and_the_smpp_password_hidden(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"IVR_AMI_USER": "ivr", "IVR_AMI_SECRET": "s3cret-Zq8"}
    for key, value, words in [
        ("IVR_SMS_SIP_TO", "pjsip:gw/sip:0611@10.0.0.1", "must contain {number} once"),
        ("IVR_SMS_SIP_TO", "pjsip:gw/sip:{number}@10.0.0.1,x", "must contain {number} once"),
        ("IVR_SMS_SIP_RATE", "0", "between 0.001 and 100"),
        ("IVR_SMS_SMPP_PASSWORD", "far too long", "printable ASCII, 8 characters at most"),
        ("IVR_SMS_SMPP_HOST", "smsc.example", "IVR_SMS_SMPP_SYSTEM_ID: missing"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)) as refused:
            load_config({**base, key: value})
        assert key != "IVR_SMS_SMPP_PASSWORD" or value not in str(refused.value)
    config = load_config({**base, "IVR_SMS_SIP_TO": "pjsip:gw/sip:{number}@10.0.0.1"})
    assert config.sms_ready and config.sms_sip_rate == 0.1
    for key, value in {
        "IVR_SMS_SMPP_HOST": "smsc.example", "IVR_SMS_SMPP_SYSTEM_ID": "chu",
        "IVR_SMS_SMPP_PASSWORD": "Pw7-x!q", "IVR_SMTP_HOST": "mail.chu.example",
        "IVR_SMTP_PASSWORD": "Mail-Pw-91", **base,
    }.items():  # fmt: skip
        clean_env.setenv(key, value)
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    assert "Pw7-x!q" not in out + err and "sms_smpp_password = (set)" in out
    assert "Mail-Pw-91" not in out + err and "smtp_password = (set)" in out
    assert "Pw7-x!q" not in repr(load_config())


def test_log_format_read_before_any_command(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert log_format({"IVR_CONFIG": str(write(tmp_path, "IVR_LOG_FORMAT=json\n"))}) == "json"
    assert log_format({"IVR_LOG_FORMAT": " json "}) == "json"
    # Wrong, it stops every command with one line naming it, as any key does.
    clean_env.setenv("IVR_LOG_FORMAT", "xml")
    assert main(["token", "list"]) == 2
    out, err = capsys.readouterr()
    assert err == "ivr: error: IVR_LOG_FORMAT: must be one of text, json, got 'xml'\n"
    assert out == ""


def test_every_key_is_in_the_commented_example() -> None:
    from dataclasses import fields

    example = (Path(__file__).parents[1] / "docs" / "ivr.env.example").read_text()
    for field in fields(Config):
        assert f"\nIVR_{field.name.upper()}=" in example, field.name
    assert "json for journald" in example, "IVR_LOG_FORMAT is commented"


def test_sentinels_off_by_default_and_not_with_a_unix_socket() -> None:
    config = load()
    assert config.redis_sentinels == ()
    assert config.redis_sentinel_master == "ivr"
    with pytest.raises(ConfigError, match=r"^IVR_REDIS_URL: a unix:// socket cannot go with"):
        load(IVR_REDIS_URL="unix:///run/redis.sock", IVR_REDIS_SENTINELS="s:26379")
