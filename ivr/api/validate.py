"""The small JSON Schema checker that enforces `ivr.api.schemas` on requests.

It knows the part of JSON Schema those schemas use: type, properties, required,
additionalProperties, propertyNames, items, min/maxItems, min/maxProperties, min/maxLength,
pattern, minimum, maximum, enum.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ivr.api.schemas import Schema

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    # bool is an int in Python, not in JSON; 1.0 is a number, not an integer.
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def check(schema: Schema, value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every way `value` breaks `schema`, as (field path, reason); [] when it conforms."""
    name = where or "body"
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in allowed):
            return [(name, f"expected {' or '.join(allowed)}, got {_json_type(value)}")]
    if "enum" in schema and value not in schema["enum"]:
        return [(name, f"must be one of {', '.join(map(str, schema['enum']))}")]
    if isinstance(value, str):
        return _check_string(schema, value, name)
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return [(name, f"must be at least {schema['minimum']}")]
        if "maximum" in schema and value > schema["maximum"]:
            return [(name, f"must be at most {schema['maximum']}")]
    if isinstance(value, list):
        return _check_array(schema, value, name, where)
    if isinstance(value, dict):
        return _check_object(schema, value, name, where)
    return []


def _check_string(schema: Schema, value: str, name: str) -> list[tuple[str, str]]:
    if _SURROGATE.search(value):
        # JSON can escape half a surrogate pair alone: no character, and Redis cannot store it.
        return [(name, "not valid Unicode text (a lone surrogate)")]
    if len(value) < schema.get("minLength", 0):
        return [(name, "must not be empty" if schema["minLength"] == 1 else "too short")]
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return [(name, f"too long: {len(value)} characters ({schema['maxLength']} at most)")]
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        return [(name, f"{value[:50]!r} does not match {schema['pattern']}")]
    return []


_SURROGATE = re.compile("[\ud800-\udfff]")


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: a final `$` is the end of the text, whereas Python's
    # also matches before a final line break.
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def _check_array(schema: Schema, value: list[Any], name: str, where: str) -> list[tuple[str, str]]:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return [(name, f"too many items: {len(value)} ({schema['maxItems']} at most)")]
    if len(value) < schema.get("minItems", 0):
        return [(name, f"at least {schema['minItems']} items")]
    problems: list[tuple[str, str]] = []
    if "items" in schema:
        for i, item in enumerate(value):
            problems += check(schema["items"], item, f"{where}[{i}]")
    return problems


def _check_object(
    schema: Schema, value: dict[str, Any], name: str, where: str
) -> list[tuple[str, str]]:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return [(name, f"too many keys: {len(value)} ({schema['maxProperties']} at most)")]
    if len(value) < schema.get("minProperties", 0):
        return [(name, f"at least {schema['minProperties']} key(s)")]
    problems = [
        (f"{where}.{key}" if where else key, "required")
        for key in schema.get("required", ())
        if key not in value
    ]
    properties: dict[str, Schema] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if "propertyNames" in schema:
            problems += [(path, f"key {why}") for _, why in check(schema["propertyNames"], key)]
        if key in properties:
            problems += check(properties[key], item, path)
        elif extra is False:
            problems.append((path, "unknown field"))
        elif isinstance(extra, dict):
            problems += check(extra, item, path)
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
