"""Scenarios: the campaigns a director can start from a telephone, prepared in advance.

Read from a TOML file (IVR_SCENARIOS; the packaged `scenarios.toml` otherwise). Each scenario
has a key (1-8) on the trigger line's menu, a label spoken in the menu and a message spoken to
staff, per language, and the campaign's targets, quotas and options. Key 9 is reserved: it
makes the next scenario chosen a drill.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.campaign import plan as plans
from ivr.campaign.recall import RecallPlan, parse_plan
from ivr.campaign.spec import CampaignError, CampaignSpec, Group
from ivr.errors import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parent / "scenarios.toml"
#: The menu key that turns a scenario into a drill.
DRILL_KEY = "9"
_OPTIONS = {
    f.name
    for f in dataclasses.fields(CampaignSpec)
    if f.name
    not in ("messages", "recordings", "name", "roles", "units", "quotas", "drill", "groups")
}


class ScenarioNotFound(CampaignError):
    """No scenario has this key."""

    error_id = "scenario_not_found"


@dataclass(frozen=True)
class Scenario:
    """One prepared campaign."""

    key: str
    name: str
    #: language -> what the menu says ("plan blanc, afflux massif de victimes").
    labels: dict[str, str]
    spec: CampaignSpec
    #: Who is called back when its quotas are met or it ends (`director_callback`).
    recall: RecallPlan = RecallPlan()

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("fr") or self.name

    def campaign(self, *, drill: bool, recordings: dict[str, str] | None = None) -> CampaignSpec:
        """The campaign to start: the prepared one, as a drill or not, maybe with a recording."""
        return dataclasses.replace(self.spec, drill=drill, recordings=dict(recordings or {}))


def load_scenarios(path: Path | None = None) -> list[Scenario]:
    """Parse and check the scenario file; a ConfigError names the scenario and the field."""
    path = path or DEFAULT_FILE
    where = f"IVR_SCENARIOS: {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    entries = data.get("scenario")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: no [[scenario]] in it")
    scenarios: list[Scenario] = []
    for number, entry in enumerate(entries, start=1):
        scenario = _scenario(entry, f"{where}: scenario {number}")
        if any(s.key == scenario.key for s in scenarios):
            raise ConfigError(f"{where}: scenario {number}: key {scenario.key} is used twice")
        scenarios.append(scenario)
    return sorted(scenarios, key=lambda s: s.key)


def load_role_labels(path: Path | None = None) -> dict[str, dict[str, str]]:
    """language -> role id -> how the phone lines say it, from the file's [roles] table."""
    path = path or DEFAULT_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # load_scenarios() reports a broken file
    labels: dict[str, dict[str, str]] = {}
    roles = data.get("roles", {})
    if not isinstance(roles, dict):
        raise ConfigError(f"IVR_SCENARIOS: {path}: [roles] must be a table of role = labels")
    for role, texts in roles.items():
        for language, text in _texts(texts, f"IVR_SCENARIOS: {path}: roles.{role}").items():
            labels.setdefault(language, {})[str(role).lower()] = text
    return labels


def _scenario(entry: Any, where: str) -> Scenario:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    key = entry.get("key")
    if not isinstance(key, int) or not 1 <= key <= 8:
        raise ConfigError(f"{where}: key must be a number from 1 to 8 (9 means drill)")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: name is required")
    labels = _texts(entry.get("label", {}), f"{where}: label")
    messages = _texts(entry.get("message", {}), f"{where}: message")
    known = {"key", "name", "label", "message", "roles", "units", "quotas", "group"}
    known.add("director_callback")
    unknown = set(entry) - _OPTIONS - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    options = {k: v for k, v in entry.items() if k in _OPTIONS}
    try:
        if "plan" in options:
            # `plan = "voice, sms, voice"`, as the command line takes it, or a list of steps.
            raw = options["plan"]
            text = raw if isinstance(raw, str) else ",".join(str(step) for step in raw)
            options["plan"] = plans.parse(text)
        spec = CampaignSpec(
            messages=messages,
            name=name.strip(),
            roles=tuple(str(r).lower() for r in entry.get("roles", [])),
            units=tuple(str(u) for u in entry.get("units", [])),
            quotas={str(k).lower(): v for k, v in entry.get("quotas", {}).items()},
            groups=_groups(entry.get("group", []), where),
            **options,
        )
        spec.validate()
    except (CampaignError, plans.PlanError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    recall = parse_plan(entry.get("director_callback", True), where)
    return Scenario(str(key), name.strip(), labels or {"fr": name.strip()}, spec, recall)


def _groups(value: Any, where: str) -> tuple[Group, ...]:
    """The [[scenario.group]] tables: who else to call when the director extends the alert."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: group must be [[scenario.group]] tables")
    groups = []
    for n, entry in enumerate(value, start=1):
        here = f"{where}: group {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: expected a table")
        unknown = set(entry) - {"name", "roles", "units"}
        if unknown:
            raise ConfigError(f"{here}: unknown field(s) {', '.join(sorted(unknown))}")
        roles, units = entry.get("roles", []), entry.get("units", [])
        name = entry.get("name", "")
        if not isinstance(name, str) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in (roles, units)
        ):
            raise ConfigError(f"{here}: name is a text, roles and units lists of texts")
        groups.append(Group(name.strip(), tuple(r.lower() for r in roles), tuple(u for u in units)))
    return tuple(groups)


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f'{where}: expected text per language (fr = "...", en = "...")')
    texts = {k: v.strip() for k, v in value.items() if v.strip()}
    for language in texts:
        if language not in ("fr", "en"):
            raise ConfigError(f"{where}: unknown language {language!r}")
    return texts
