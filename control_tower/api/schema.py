"""What the OpenAPI schema says beyond drf-spectacular's defaults, in one place, so generated
clients and fuzzers can trust it (docs/SECURITY.md):

- `AutoSchema`: a blank-able email, URL or pattern field also accepts and returns `""`; a file
  field reads out as `null` when no file is stored.
- `add_error_responses` (a postprocessing hook): the error answers every operation can give,
  all with the one error body of control_tower/api/errors.py."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every 4xx answer of the API (control_tower/api/errors.py).",
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. `validation_error`."},
        "detail": {"type": "string", "description": "For humans."},
        "fields": {
            "type": "object",
            "description": "Field name → messages; a list's items are keyed by their index, "
            "nested the same way. Empty when no field is at fault.",
            "additionalProperties": True,
        },
    },
    "required": ["error", "detail", "fields"],
}
_ERRORS = {
    "400": "The request is malformed or a field is invalid: `fields` names them.",
    "401": "No credentials, or they are wrong (an unknown or revoked API key).",
    "403": "The credentials do not allow this (role, key scope or carrier).",
    "404": "No such object in the caller's organization (another organization's id included), "
    "in the path or named by the body, or a page past the end.",
    "409": "The change conflicts with existing data (a duplicate, or rows still referring to it).",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}
_WRITES = {"post", "put", "patch", "delete"}


class AutoSchema(SpectacularAutoSchema):
    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if not _may_be_blank(field):
            return
        # `format: email` or a pattern would call the stored "" (no address) invalid.
        constraints = {key: schema.pop(key) for key in ("format", "pattern") if key in schema}
        if constraints:
            schema["anyOf"] = [constraints, {"maxLength": 0}]

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.FileField) and direction == "response":
            schema["nullable"] = True  # DRF reads an empty file field out as null
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            # JSON Schema's `time` is RFC 3339's, with an offset; these are wall-clock times.
            del schema["format"]
            schema["pattern"] = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"
        return schema


def _may_be_blank(field) -> bool:
    if getattr(field, "allow_blank", False):
        return True
    # DRF drops `allow_blank` from read-only fields; the model field (followed through
    # relations for `source="user.email"`) still says it.
    model = getattr(getattr(getattr(field, "parent", None), "Meta", None), "model", None)
    if not field.read_only or model is None or not field.source or field.source == "*":
        return False
    model_field = None
    for name in field.source.split("."):
        if model is None:
            return False
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        model = model_field.related_model
    return bool(getattr(model_field, "blank", False))


def _error_codes(method: str, operation: dict) -> list[str]:
    codes = ["401", "403", "429"]
    parameters = operation.get("parameters", [])
    if "requestBody" in operation or any(p.get("in") != "path" for p in parameters):
        codes.append("400")
    in_path = any(p.get("in") == "path" for p in parameters)
    paginated = any(p.get("in") == "query" and p.get("name") == "page" for p in parameters)
    # A body may name an object by id that does not exist (`{"route": 0}` on incidents).
    refers = method in _WRITES and "requestBody" in operation
    if in_path or paginated or refers:
        codes.append("404")
    if method in _WRITES:
        codes.append("409")
    return sorted(codes)


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document each operation's error answers once, here,
    rather than on every view. A view that documents a code itself keeps its own."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in _error_codes(method, operation):
                responses.setdefault(
                    code,
                    {
                        "description": _ERRORS[code],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
