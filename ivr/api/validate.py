"""Requests checked against `ivr.api.schemas` by jsonschema-rs: JSON Schema Draft 2020-12, the
dialect the OpenAPI 3.1 document promises, every keyword, format assertions on.

jsonschema-rs rather than the pure-Python `jsonschema` or `fastjsonschema`: it passes the
official JSON-Schema-Test-Suite for 2020-12 (fastjsonschema stops at draft 7), it lists every
error with its path (fastjsonschema stops at the first), its regular expressions end at the end
of the text with `$` as ECMA-262 says (Python's `re`, which `jsonschema` uses, also matches
before a final line break, so "nurse\\n" would pass as a role), and it is the fastest: see
`bench/validation.py`. It is also what schemathesis judges our answers with in the fuzz test.

What this module adds is presentation only: each library error becomes a (field path, reason)
pair in the words the API has always used (`messages.fr`, "must not be empty"), in the order
of the body. A keyword without words of its own keeps the library's message: a keyword is
never left unenforced for want of a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from jsonschema_rs import ValidationError
from jsonschema_rs import ValidationErrorKind as Kind

from ivr.api.schemas import Schema

#: A field path as the library gives it: keys and list indexes from the top of the value.
Path = list[str | int]
#: One problem as the API reports it: (field path, reason).
Problem = tuple[str, str]

_SURROGATE = re.compile("[\ud800-\udfff]")


class Checker:
    """One schema, compiled once; `problems(value)` lists every way a value breaks it."""

    def __init__(self, schema: Schema) -> None:
        # Compiling checks the schema against the 2020-12 meta-schema; `offline`: a `$ref` to
        # a URL fails here, at start-up, instead of fetching anything.
        self._validator = jsonschema_rs.Draft202012Validator(
            schema, validate_formats=True, offline=True
        )

    def problems(self, value: Any, where: str = "") -> list[Problem]:
        """Every (field path, reason) of `value` against the schema; [] when it conforms.
        `where` names the value itself ("body" when empty), and prefixes the paths inside."""
        try:
            if self._validator.is_valid(value):
                return []
            errors = list(self._validator.iter_errors(value))
        except UnicodeEncodeError:
            # JSON can escape half a surrogate pair alone: no character, and neither the
            # validator nor Redis (both UTF-8) can take it.
            return [
                (_show(path, where), "not valid Unicode text (a lone surrogate)")
                for path in _surrogates(value, [])
            ]
        found = [problem for error in errors for problem in _explain(error)]
        found.sort(key=lambda problem: _position(value, problem[0]))
        return [(_show(path, where), reason) for path, reason in found]


def _explain(error: ValidationError) -> list[tuple[Path, str]]:
    """The problems one library error stands for, each at the path of the field at fault."""
    path: Path = list(error.instance_path)
    match error.kind:
        case Kind.Required(name):
            return [([*path, name], "required")]
        case Kind.AdditionalProperties(names):
            return [([*path, name], "unknown field") for name in names]
        case Kind.PropertyNames(inner):
            # The error is about a key, reported at the key's own path.
            return [([*path, str(inner.instance)], f"key {why}") for _, why in _explain(inner)]
    return [(path, _reason(error.kind, error.instance, error.message))]


#: The API's words for the bounds, by keyword: `{limit}` is the schema's, `{size}` the value's
#: length.
_BOUNDS = {
    "minLength": "too short",
    "maxLength": "too long: {size} characters ({limit} at most)",
    "minimum": "must be at least {limit}",
    "maximum": "must be at most {limit}",
    "minItems": "at least {limit} items",
    "maxItems": "too many items: {size} ({limit} at most)",
    "minProperties": "at least {limit} key(s)",
    "maxProperties": "too many keys: {size} ({limit} at most)",
}


def _reason(kind: Kind, value: Any, message: str) -> str:
    match kind:
        case Kind.Type(types):
            return f"expected {' or '.join(types)}, got {_json_type(value)}"
        case Kind.Enum(options):
            return f"must be one of {', '.join(map(str, options))}"
        case Kind.MinLength(1):
            return "must not be empty"
        case Kind.Pattern(pattern):
            return f"{str(value)[:50]!r} does not match {pattern}"
    if kind.name in _BOUNDS:
        size = len(value) if isinstance(value, str | list | dict) else 0
        return _BOUNDS[kind.name].format(size=size, **kind.as_dict())
    return message


def _position(value: Any, path: Path) -> tuple[int, ...]:
    """Where `path` is in `value`, in the order the client wrote it (a missing key first)."""
    position: list[int] = []
    for step in path:
        if isinstance(value, dict):
            keys = list(value)
            position.append(keys.index(step) if step in value else -1)
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            position.append(step)
            value = value[step]
        else:
            break
    return tuple(position)


def _show(path: Path, where: str) -> str:
    shown = where
    for step in path:
        if isinstance(step, int):
            shown = f"{shown}[{step}]"
        else:
            shown = f"{shown}.{step}" if shown else step
    return shown or "body"


def _surrogates(value: Any, path: Path) -> Iterator[Path]:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                yield [*path, key]
            else:
                yield from _surrogates(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _surrogates(item, [*path, index])


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
