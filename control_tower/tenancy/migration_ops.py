"""A migration operation that makes PostgreSQL itself refuse cross-organization links.

For every foreign key from a tenant model to another tenant model it adds a composite key
`(organization_id, <fk>_id) REFERENCES parent (organization_id, id)`, so a shipment can never
point at another organization's hub, whatever code path wrote it. Idempotent: run it again in
a later migration after adding models (a test checks that every such link is covered).
"""

from __future__ import annotations

from django.db import migrations


def tenant_links(apps, app_labels):
    """(child table, fk column, parent table) for each tenant → tenant foreign key."""
    for app_label in app_labels:
        for model in apps.get_app_config(app_label).get_models():
            if not model._meta.managed:
                # Tables made by SQL (the partitioned pings) declare their own keys there.
                continue
            field_names = {f.name for f in model._meta.get_fields()}
            if "organization" not in field_names:
                continue
            for field in model._meta.fields:
                if not field.many_to_one and not field.one_to_one:
                    continue
                if field.name == "organization":
                    continue
                parent = field.related_model
                if not any(f.name == "organization" for f in parent._meta.fields):
                    continue
                yield model._meta.db_table, field.column, parent._meta.db_table


def constraint_name(table: str, column: str) -> str:
    return f"{table}_{column}_same_org"[:63]


class EnforceSameOrganization(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, app_labels):
        self.app_labels = list(app_labels)

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        quote = schema_editor.quote_name
        for table, column, parent in tenant_links(to_state.apps, self.app_labels):
            name = constraint_name(table, column)
            schema_editor.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(parent + '_org_id_uniq')} "
                f"ON {quote(parent)} (organization_id, id)"
            )
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)}"
            )
            # MATCH SIMPLE: a NULL link is not checked. Deferred like Django's own FKs.
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} "
                f"FOREIGN KEY (organization_id, {quote(column)}) "
                f"REFERENCES {quote(parent)} (organization_id, id) DEFERRABLE INITIALLY DEFERRED"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        quote = schema_editor.quote_name
        for table, column, _parent in tenant_links(from_state.apps, self.app_labels):
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS "
                f"{quote(constraint_name(table, column))}"
            )

    def describe(self):
        return "Add same-organization composite foreign keys"
