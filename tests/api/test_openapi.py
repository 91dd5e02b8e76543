"""The OpenAPI document: every operation says what it answers, its examples are what it says,
and its links lead to real operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from app.main import create_app

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # The document /openapi.json serves: create_app() opens nothing until its lifespan starts.
    return create_app().openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def body_shapes(document: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The objects a JSON body can be: the items of an array, each branch of a union."""
    schema = resolve(document, schema)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        for branch in branches:
            yield from body_shapes(document, branch)
    elif schema.get("type") == "array":
        yield from body_shapes(document, schema.get("items", {}))
    elif schema.get("type") != "null":
        yield schema


def untyped_answers(document: dict[str, Any]) -> list[str]:
    problems = []
    for method, path, operation in operations(document):
        successes = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        if not successes:
            problems.append(f"{method} {path}: no 2xx answer")
        for code, response in successes.items():
            content = response.get("content")
            if code == "204":
                if content:
                    problems.append(f"{method} {path} {code}: a 204 with content")
                continue
            if not content:
                problems.append(f"{method} {path} {code}: no content")
                continue
            for media, body in content.items():
                schema = body.get("schema", {})
                where = f"{method} {path} {code} {media}"
                if media != "application/json":
                    if resolve(document, schema).get("type") != "string":
                        problems.append(f"{where}: no string schema")
                    continue
                for shape in body_shapes(document, schema):
                    if shape.get("type") != "object" or not shape.get("properties"):
                        problems.append(f"{where}: {shape} is not an object with properties")
    return problems


def test_every_operation_answers_a_typed_body(document: dict[str, Any]) -> None:
    """Every 2xx answer in JSON is an object (or a list of objects) with named properties;
    any other media type is a string; a 204 has no content."""
    assert len(list(operations(document))) >= 20
    assert untyped_answers(document) == []


def test_the_check_refuses_an_untyped_answer() -> None:
    """What the routes declared before they had models (a `dict` annotation)."""
    document = {
        "paths": {
            "/a": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "additionalProperties": True}
                                }
                            }
                        }
                    }
                }
            },
            "/b": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {}}}},
                        "201": {"content": {"text/markdown": {}}},
                    }
                }
            },
            "/c": {"post": {"responses": {"422": {"description": "refused"}}}},
        }
    }
    assert len(untyped_answers(document)) == 4


def test_answers_are_exact(document: dict[str, Any]) -> None:
    """Every object of the API's own bodies says that nothing else comes with it."""
    open_objects = [
        name
        for name, schema in document["components"]["schemas"].items()
        if schema.get("type") == "object"
        and schema.get("additionalProperties") is not False
        # FastAPI's own (never sent: the app answers 422s as InvalidBody)
        and name not in ("HTTPValidationError", "ValidationError")
    ]
    assert open_objects == []


def test_examples_are_what_the_schemas_say(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(document):
        bodies = {**operation["responses"], "request": operation.get("requestBody", {})}
        for code, response in bodies.items():
            for media, body in response.get("content", {}).items():
                if "example" not in body or media != "application/json":
                    continue
                # Validated against the document, where the schemas' references resolve.
                schema = {**body["schema"], "components": document["components"]}
                errors = jsonschema.Draft202012Validator(schema).iter_errors(body["example"])
                assert [e.message for e in errors] == [], (method, path, code)
                checked += 1
    assert checked >= 5


def test_links_lead_to_operations_and_their_parameters(document: dict[str, Any]) -> None:
    links = 0
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                target = resolve(document, {"$ref": link["operationRef"]})
                declared = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= declared, (method, path, code, name)
                assert all(v.startswith("$response.body#/") for v in link["parameters"].values())
                links += 1
    # POST waivers -> DELETE, push -> its snapshot, scan -> its result, lists -> their items
    assert links >= 12
