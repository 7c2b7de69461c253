from django.db import migrations

from control_tower.tenancy.migration_ops import EnforceSameOrganization


class Migration(migrations.Migration):
    dependencies = [
        ("carriers", "0002_initial"),
        ("control_tower", "0001_initial"),
        ("tracking", "0001_initial"),
    ]

    operations = [EnforceSameOrganization(["control_tower", "carriers", "tracking"])]
