"""The OpenAPI document (dqueue/api/openapi.py): well formed, in step with the validators and
the role table. That every route is documented, and served, is tested in test_app.py."""

from __future__ import annotations

import json
from typing import Any

from dqueue.api import auth
from dqueue.api.openapi import REQUEST_FIELDS, openapi_document
from dqueue.queue import fields as field_rules


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every mapping inside ``node``, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            found += _walk(child)
    elif isinstance(node, list):
        for child in node:
            found += _walk(child)
    return found


def test_request_schemas_match_the_validators_fields():
    schemas = openapi_document()["components"]["schemas"]
    for name, fields in REQUEST_FIELDS.items():
        assert set(schemas[name]["properties"]) == set(fields), name


def test_every_reference_resolves_and_every_operation_answers():
    document = openapi_document()
    schemas = document["components"]["schemas"]
    refs = [node["$ref"] for node in _walk(document) if "$ref" in node]
    assert refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert document["openapi"].startswith("3.")
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["responses"] and operation["summary"]


def test_every_operation_names_the_role_of_the_route_table():
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            key = (method.upper(), path.split("?", 1)[0])
            assert operation["x-dqueue-role"] == auth.role_for(*key), key
            assert {"bearer": []} in operation["security"]
            assert ({} in operation["security"]) == (key in auth.OPEN_HEALTH_ROUTES), key


def test_error_answers_use_the_error_schema():
    for path, item in openapi_document()["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if path == "/ready" and status == "503":
                    continue  # not ready: the body says why, it is not an error object
                if status.startswith(("4", "5")) and "content" in response:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, status


def test_the_document_is_plain_json_and_built_afresh_each_time():
    first = openapi_document()
    assert json.loads(json.dumps(first)) == first
    first["paths"].clear()  # a caller changing its copy changes no one else's
    assert openapi_document()["paths"]


def test_ids_and_lease_tokens_have_the_lengths_the_field_rules_take():
    schemas = openapi_document()["components"]["schemas"]
    for name in ("AckRequest", "NackRequest", "ExtendRequest"):
        token = schemas[name]["properties"]["lease_token"]
        assert (token["minLength"], token["maxLength"]) == (
            field_rules.PRESENTED_LEASE_TOKEN.min_chars,
            field_rules.PRESENTED_LEASE_TOKEN.max_chars)
    for name in ("LeaseRequest", "AckRequest", "NackRequest", "ExtendRequest"):
        worker_id = schemas[name]["properties"]["worker_id"]
        assert (worker_id["minLength"], worker_id["maxLength"]) == (
            field_rules.WORKER_ID.min_chars, field_rules.WORKER_ID.max_chars)
