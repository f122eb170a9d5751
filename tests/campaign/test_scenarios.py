"""The scenario file of the trigger line: parsed, checked, turned into campaigns."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.campaign.scenarios import load_scenarios
from ivr.errors import ConfigError

_GROUP = '[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\n[[scenario.group]]\n'


def test_the_packaged_scenarios_load() -> None:
    scenarios = load_scenarios()
    assert [s.key for s in scenarios] == ["1", "2", "3"]
    cyber = scenarios[1]
    assert "cyber" in cyber.label("en") and "cyber" in cyber.label("fr")
    spec = cyber.campaign(drill=True, recordings={"fr": "recordings/x.wav"})
    assert spec.drill and spec.recordings == {"fr": "recordings/x.wav"}
    assert spec.quotas == {"nurse": 15} and not cyber.spec.drill


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no \\[\\[scenario\\]\\]"),
        ("[[scenario]\nkey=1", "not valid TOML"),
        ('[[scenario]]\nkey = 9\nname = "x"\nmessage.fr = "m"', "key must be a number from 1 to 8"),
        ('[[scenario]]\nkey = 1\nmessage.fr = "m"', "name is required"),
        ('[[scenario]]\nkey = 1\nname = "x"', "a message text or a recording is required"),
        ('[[scenario]]\nkey = 1\nname = "x"\nmessage.de = "m"', "unknown language 'de'"),
        ('[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\ncolour = 1', "unknown field"),
        ('[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\nring_timeout = 1', "ring timeout"),
        (
            '[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\n'
            '[[scenario]]\nkey = 1\nname = "y"\nmessage.fr = "m"',
            "key 1 is used twice",
        ),
        (_GROUP + 'name = "rea"', "group 1 names no role and no unit"),
        (_GROUP + 'units = "rea"', "group 1: name is a text, roles and units lists of texts"),
        (_GROUP + "roles = [1]", "group 1: name is a text"),
        (_GROUP + 'roles = ["x"]\nquota = 3', "group 1: unknown field"),
        ('[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\ngroup = 1', "group must be"),
    ],
)
def test_a_broken_scenario_file_names_the_problem(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "scenarios.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error) as info:
        load_scenarios(path)
    assert str(path) in str(info.value)


def test_a_missing_scenario_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenarios(tmp_path / "nope.toml")


def test_role_labels_per_language(tmp_path: Path) -> None:
    from ivr.campaign.scenarios import load_role_labels

    labels = load_role_labels()
    assert labels["fr"]["nurse"] == "infirmiers" and labels["en"]["nurse"] == "nurses"
    path = tmp_path / "s.toml"
    path.write_text('[roles]\nide = { fr = "infirmiers", de = "x" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="roles.ide: unknown language 'de'"):
        load_role_labels(path)


def test_groups_to_extend_to_are_read_in_order(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        _GROUP + 'name = "réa"\nunits = ["Réanimation"]\n'
        '[[scenario.group]]\nroles = ["Midwife", "orderly"]\n',
        encoding="utf-8",
    )
    [scenario] = load_scenarios(path)
    first, second = scenario.spec.groups
    assert (first.name, first.roles, first.units) == ("réa", (), ("Réanimation",))
    assert (second.name, second.roles) == ("", ("midwife", "orderly"))
    assert scenario.campaign(drill=True).groups == scenario.spec.groups
