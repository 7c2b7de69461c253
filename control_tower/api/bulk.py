"""Helpers for bulk endpoints: resolve many ids in one query each, report errors by index."""

from __future__ import annotations

from collections import defaultdict

from rest_framework import serializers

from control_tower.tenancy.carrier_scope import visible_to


class BulkErrors:
    """Collects errors as `{index: {field: [messages]}}` and raises them all at once."""

    def __init__(self, list_name: str):
        self.list_name = list_name
        self.errors: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def add(self, index: int, field: str, message: str) -> None:
        self.errors[index][field].append(message)

    def raise_if_any(self, *, wrap: bool = True) -> None:
        """Raise `{list_name: {index: errors}}`; `wrap=False` inside a field validator, where
        DRF already files the errors under the field's name."""
        if self.errors:
            by_index = {str(i): dict(fields) for i, fields in sorted(self.errors.items())}
            raise serializers.ValidationError({self.list_name: by_index} if wrap else by_index)


def index_list_errors(detail):
    """DRF reports a list's errors as a list aligned with the input (`{}` for valid items);
    turn it into `{"3": {...}}` so a client sees at once which items are wrong."""
    if isinstance(detail, list) and detail and all(isinstance(x, dict) for x in detail):
        return {str(i): index_list_errors(x) for i, x in enumerate(detail) if x}
    if isinstance(detail, dict):
        return {key: index_list_errors(value) for key, value in detail.items()}
    return detail


def resolve_ids(actor, model, items: list[dict], field: str, errors: BulkErrors, *, required: bool):
    """Replace `item[field]` (an id) by the object, fetching all of them in one query narrowed
    to what `actor` may see: another organization's or another carrier's id does not exist."""
    ids = {item[field] for item in items if item.get(field) is not None}
    found = visible_to(actor, model).in_bulk(ids) if ids else {}
    for index, item in enumerate(items):
        value = item.get(field)
        if value is None:
            if required:
                errors.add(index, field, "This field is required.")
            continue
        obj = found.get(value)
        if obj is None:
            errors.add(index, field, f'Invalid pk "{value}" - object does not exist.')
        else:
            item[field] = obj
