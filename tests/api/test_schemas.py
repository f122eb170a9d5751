"""The JSON Schema checks of the API's bodies and query parameters (jsonschema-rs, with the
API's own wording of each problem; pure, no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.api import schemas
from ivr.api.validate import Checker, Problem

ROLE_LIST = {"type": "array", "items": schemas.ROLE, "maxItems": 2}


def check(schema: dict[str, Any], value: Any) -> list[Problem]:
    return Checker(schema).problems(value)


@pytest.mark.parametrize(
    ("schema", "value", "problems"),
    [
        ({"type": "integer"}, 3, []),
        ({"type": "integer"}, True, [("body", "expected integer, got boolean")]),
        ({"type": "integer"}, 3.5, [("body", "expected integer, got number")]),
        # Draft 2020-12: a number with a zero fractional part is an integer.
        ({"type": "integer"}, 3.0, []),
        ({"type": "number"}, 3, []),
        ({"type": "number"}, False, [("body", "expected number, got boolean")]),
        ({"type": ["string", "null"]}, None, []),
        ({"type": "boolean"}, 0, [("body", "expected boolean, got integer")]),
        ({"type": "integer", "minimum": 1, "maximum": 3}, 4, [("body", "must be at most 3")]),
        ({"enum": ["a", "b"]}, "c", [("body", "must be one of a, b")]),
        (ROLE_LIST, ["nurse", "doctor"], []),
        (ROLE_LIST, ["a", "b", "c"], [("body", "too many items: 3 (2 at most)")]),
        ({"type": "string", "minLength": 1}, "", [("body", "must not be empty")]),
        ({"type": "string", "minLength": 2}, "a", [("body", "too short")]),
        ({"maxLength": 3}, "abcd", [("body", "too long: 4 characters (3 at most)")]),
        ({"minProperties": 1}, {}, [("body", "at least 1 key(s)")]),
        ({"maxProperties": 1}, {"a": 1, "b": 2}, [("body", "too many keys: 2 (1 at most)")]),
        ({"minItems": 2}, [1], [("body", "at least 2 items")]),
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


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"const": "x"}, "x", "y"),
        ({"type": "array", "uniqueItems": True}, [1, 2], [1, 1]),
        ({"type": "integer", "multipleOf": 5}, 10, 12),
        ({"type": "integer", "exclusiveMinimum": 0}, 1, 0),
        ({"type": "string", "format": "date"}, "2026-03-01", "yesterday"),
        ({"type": "string", "format": "email"}, "cadre@chu.example", "not an address"),
        ({"prefixItems": [{"type": "string"}], "items": False}, ["a"], ["a", 1]),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, 1),
        ({"properties": {"a": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer"}}},
         {"a": 1}, {"a": "1"}),
    ],
)  # fmt: skip
def test_every_draft_2020_12_keyword_is_enforced(
    schema: dict[str, Any], good: Any, bad: Any
) -> None:
    # The hand-written checker this replaced silently ignored every one of these.
    assert check(schema, good) == []
    assert check(schema, bad) != []


def test_query_parameters_are_named_and_every_route_schema_compiles() -> None:
    from ivr.api.app import ROUTES

    limit = {"type": "integer", "minimum": 1, "maximum": 1000}
    assert Checker(limit).problems(0, "limit") == [("limit", "must be at least 1")]
    for route in ROUTES:
        for schema in (route.body, route.response, *(p.schema for p in route.query)):
            if schema is not None:
                Checker(schema)  # compiling checks it against the 2020-12 meta-schema


def test_a_schema_that_is_not_json_schema_is_refused() -> None:
    import jsonschema_rs

    with pytest.raises(jsonschema_rs.ValidationError):
        Checker({"type": "text"})
    with pytest.raises(jsonschema_rs.ValidationError, match="(?i)retriev"):
        Checker({"$ref": "https://schemas.example/ivr/role.json"})  # never fetched
