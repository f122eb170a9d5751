"""Every command, fed arguments as an adversarial user would type them: no traceback, and only
the documented exit codes (README): 0 ok, 1 a check failed, 2 configuration or input, 3
Asterisk, 4 speech, 5 sandbox, 6 Redis, 130 interrupted.

Redis and Asterisk are configured on ports where nothing listens, so a command that gets past
its arguments ends quickly with its documented code instead of doing real work.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivr.cli.main import main
from ivr.sandbox.redisserver import free_port

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 130}

#: Values a person may type: ordinary ones, out of range, not numbers, odd text.
NUMBERS = st.sampled_from(["-5", "0", "1", "3", "30", "301", "400", "1e9", "abc", "", "-0", "2.5"])
TEXT = st.one_of(
    st.sampled_from(["", " ", "x" * 6000, "a\u202eb", "=cmd", "../../etc/passwd", "--", "-"]),
    st.text(max_size=30),
)
OPTIONS = {
    "call": (["--ring-timeout", "--language", "--message"], ["0611223344", "06&12", ""]),
    "campaign start": (
        ["--ring-timeout", "--attempts", "--retry-delay", "--quota", "--lines", "--message",
         "--message-en", "--name", "--role", "--unit", "--callback", "--audio"],
        [],
    ),
    "campaign status": (["--json"], ["1", "abc", "-1"]),
    "campaign stop": ([], ["1", "x"]),
    "campaign report": (["--csv", "--json"], ["1", "9999"]),
    "worker": (["--capacity", "--cps", "--name", "--asterisk"], []),
    "roster import": ([], ["/nonexistent/roster.csv", "/dev/null", "."]),
    "roster export": ([], ["/nonexistent/dir/r.csv"]),
    "token create": (["--role"], ["ops"]),
    "pin remove": ([], ["d0"]),
    "selftest": (["--key-wait", "--busy"], ["PJSIP/1@t", "bad target"]),
    "config": ([], []),
}  # fmt: skip


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(sorted(OPTIONS)))
    options, positionals = OPTIONS[name]
    argv = name.split()
    if positionals:
        argv.append(draw(st.sampled_from(positionals)))
    for option in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        value = draw(st.one_of(NUMBERS, TEXT))
        argv += [option] if option in ("--json", "--csv") else [option, value]
    return argv


@pytest.fixture(autouse=True)
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in ("IVR_CONFIG", "IVR_SELFTEST_TARGETS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("IVR_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("IVR_AMI_PORT", str(free_port()))
    monkeypatch.setenv("IVR_AMI_USER", "ivr")
    monkeypatch.setenv("IVR_AMI_SECRET", "fuzz-secret")
    monkeypatch.setenv("IVR_AUDIO_DIR", str(tmp_path_factory.mktemp("audio")))


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_no_traceback_and_documented_exit_codes(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: a usage error (2) or --help (0)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code in DOCUMENTED, (argv, code, err)
    assert "Traceback" not in out + err, (argv, err)
    event(f"exit {code}")
