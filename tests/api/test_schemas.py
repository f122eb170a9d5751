"""The JSON Schema checker behind the API's bodies and query parameters (pure, no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.api import schemas
from ivr.api.validate import check

ROLE_LIST = {"type": "array", "items": schemas.ROLE, "maxItems": 2}


@pytest.mark.parametrize(
    ("schema", "value", "problems"),
    [
        ({"type": "integer"}, 3, []),
        ({"type": "integer"}, True, [("body", "expected integer, got boolean")]),
        ({"type": "integer"}, 3.0, [("body", "expected integer, got number")]),
        ({"type": "number"}, 3, []),
        ({"type": "number"}, False, [("body", "expected number, got boolean")]),
        ({"type": ["string", "null"]}, None, []),
        ({"type": "boolean"}, 0, [("body", "expected boolean, got integer")]),
        ({"type": "integer", "minimum": 1, "maximum": 3}, 4, [("body", "must be at most 3")]),
        ({"enum": ["a", "b"]}, "c", [("body", "must be one of a, b")]),
        (ROLE_LIST, ["nurse", "doctor"], []),
        (ROLE_LIST, ["a", "b", "c"], [("body", "too many items: 3 (2 at most)")]),
    ],
)
def test_types_and_bounds(schema: dict[str, Any], value: Any, problems: list[Any]) -> None:
    assert check(schema, value) == problems


def test_patterns_end_at_the_end_of_the_text() -> None:
    # Python's `$` also matches before a final line break; JSON Schema's does not.
    assert check(schemas.ROLE, "nurse") == []
    assert [f for f, _ in check(schemas.ROLE, "nurse\n")] == ["body"]
    name = schemas.CAMPAIGN_FIELDS["name"]
    assert check(name, "Plan blanc 2026") == [] and check(name, "a\nb") != []


def test_lone_surrogates_refused() -> None:
    assert check({"type": "string"}, "ok é ✓") == []
    assert check({"type": "string"}, "x\ud800") == [
        ("body", "not valid Unicode text (a lone surrogate)")
    ]


def test_objects_report_every_problem_with_its_path() -> None:
    body = {
        "messages": {"fr": "", "de": "x"},
        "quotas": {"Nurse": 1, "doctor": 0},
        "roles": ["nurse", 5],
        "extra": 1,
    }
    fields = [field for field, _ in check(schemas.CAMPAIGN, body)]
    assert fields == [
        "messages.fr", "messages.de", "quotas.Nurse", "quotas.doctor", "roles[1]", "extra",
    ]  # fmt: skip
    assert check(schemas.CAMPAIGN, {}) == [("messages", "required")]
    assert check(schemas.QUOTA, {"role": "nurse", "quota": 2}) == []


def test_campaign_fields_are_the_spec_fields() -> None:
    from dataclasses import fields

    from ivr.campaign.spec import CampaignSpec

    spec = {f.name for f in fields(CampaignSpec)}
    # Recordings are files on the server; the IVR's tuning knobs are not offered (nor by the CLI).
    hidden = {"recordings", "key_wait", "max_tries", "overcall"}
    assert set(schemas.CAMPAIGN_FIELDS) == spec - hidden
