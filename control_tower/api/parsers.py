"""The API's JSON parser: DRF's, reading through the one strict loader (control_tower/json_input.py)
so deep nesting and NaN are a 400 `parse_error` naming the body instead of a 500."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from control_tower.json_input import JsonInputError, json_loads


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(stream.read().decode(encoding))
        except (JsonInputError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
