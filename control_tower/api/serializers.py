"""Serializer base for tenant models."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers
from rest_framework.relations import ManyRelatedField, PrimaryKeyRelatedField

from control_tower.api.fields import SaneDateTimeField
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.models import TenantModel
from control_tower.tenancy.scope import get_scope


class TenantModelSerializer(serializers.ModelSerializer):
    """ModelSerializer for tenant models.

    - `organization` is never a field: the view passes the actor's organization to `save()`.
    - Related-object choices come from the scoped default manager, so an id of another
      organization's object is "does not exist"; for carrier-bound actors they are narrowed
      further by `visible_to`, so another carrier's id is "does not exist" too.
    - `Meta.unique_in_organization = (("code",), ...)` gives a 400 on duplicates instead of a
      database error.
    - Date-times are `SaneDateTimeField`s: a year such as 4845 is a 400 naming the field.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: SaneDateTimeField,
    }

    def get_fields(self):
        fields = super().get_fields()
        if get_scope() is None:  # schema generation: leave the lazy managers alone
            return fields
        actor = self.context.get("actor")
        for field in fields.values():
            relation = field.child_relation if isinstance(field, ManyRelatedField) else field
            if not isinstance(relation, PrimaryKeyRelatedField) or relation.read_only:
                continue
            model = relation.queryset.model if relation.queryset is not None else None
            if model is None or not issubclass(model, TenantModel):
                continue
            # Re-evaluated per request: the manager is scoped when the query runs, and the
            # actor's carrier (or driver) narrows the choices like every other read.
            relation.queryset = visible_to(actor, model)
        return fields

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        for names in getattr(self.Meta, "unique_in_organization", ()):
            values = {}
            for name in names:
                if name in attrs:
                    values[name] = attrs[name]
                elif self.instance is not None:
                    values[name] = getattr(self.instance, name)
            if len(values) != len(names) or any(v in (None, "") for v in values.values()):
                continue
            duplicates = model.objects.filter(**values)
            if self.instance is not None:
                duplicates = duplicates.exclude(pk=self.instance.pk)
            if duplicates.exists():
                raise serializers.ValidationError(
                    {
                        names[-1]: [
                            f"A {model._meta.verbose_name} with this {names[-1]} already exists."
                        ]
                    }
                )
        return attrs
