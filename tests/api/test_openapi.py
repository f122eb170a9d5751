"""The OpenAPI document against the OpenAPI 3.1 meta-schema (openapi-spec-validator, offline:
the meta-schemas ship with it; the network is cut for the test to prove nothing downloads)."""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from ivr import __version__
from ivr.api import openapi
from ivr.api.app import ROUTES


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the test tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_document_is_valid_openapi_3_1(offline: None) -> None:
    doc = openapi.document(ROUTES, version=__version__)
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize(
    ("where", "wrong"),
    [
        (("paths", "/api/health", "get", "responses", "200", "content", "application/json",
          "schema"), {"type": "text"}),  # not a JSON Schema type
        (("paths", "/api/health", "get", "responses", "200"), {"content": {}}),  # no description
        (("paths", "/api/health", "get", "operationId"), 12),
    ],
)  # fmt: skip
def test_a_broken_document_is_refused(offline: None, where: tuple[str, ...], wrong: Any) -> None:
    doc = copy.deepcopy(openapi.document(ROUTES, version=__version__))
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = wrong
    with pytest.raises(OpenAPIValidationError):
        validate(doc, cls=OpenAPIV31SpecValidator)
