"""The filter backend of every API list: django-filter, with the choices of every foreign-key
filter narrowed like the rows themselves.

django-filter validates `?carrier=ID` against the related model's default manager. That manager
is scoped to the organization, but not to the caller's carrier: a carrier user filtering by
another carrier's id would get an empty 200 where a missing id gets 400, which tells them the id
exists. Narrowing the choices with `visible_to` makes both answers the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter, utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.models import TenantModel


class TenantFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        actor = getattr(view, "actor", None)
        if filterset is None or actor is None:
            return filterset
        for item in filterset.filters.values():
            if not isinstance(item, ModelChoiceFilter | ModelMultipleChoiceFilter):
                continue
            model = getattr(item.queryset, "model", None)  # each filterset has its own copy
            if model is not None and issubclass(model, TenantModel):
                # Read when the form is built, after this.
                item.queryset = visible_to(actor, model)
        return filterset

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        _datetimes_in_utc(filterset.form.cleaned_data)
        return filterset.qs


def _datetimes_in_utc(cleaned: dict) -> None:
    """`?created_after=0283-12-18T12:20:18+17:19` parses (Python allows offsets up to 24 h), but
    PostgreSQL refuses offsets beyond ±15:59 with a DataError: send every time in UTC, and
    refuse one that UTC cannot hold (year 1 with a positive offset)."""
    for name, value in cleaned.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            try:
                cleaned[name] = value.astimezone(UTC)
            except OverflowError:
                raise ValidationError({name: ["This time is out of range."]}) from None
