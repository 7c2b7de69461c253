"""What a fault scenario starts from, made in the private database by a process of its own
(`python -m tests.faults.world <what> [--events N]`, with the platform's environment), printed
as JSON for the test: the fault tests never touch the suite's own test database.

    ingest   an organization, phones (devices) with their raw tokens, a running route of three
             stops driven by the first phone, and a dispatcher's session cookie
    relay    an organization with a webhook endpoint for `shipment.created`, and N shipments
             created in ONE transaction: N `shipment.created` events in the outbox and one
             relay task queued on commit
"""

from __future__ import annotations

import argparse
import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
django.setup()

from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402

from carriers.services import device_create  # noqa: E402
from control_tower.tenancy.actors import actor_for_user  # noqa: E402
from control_tower.tenancy.roles import Role  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tests.conftest import build_tenant  # noqa: E402
from tests.factories import VehicleFactory, running_route_with_phone  # noqa: E402
from tracking.services.shipments import shipments_bulk_create  # noqa: E402
from webhooks.services import endpoint_create  # noqa: E402


def ingest(phones: int) -> dict:
    tenant = build_tenant("faults-ingest")
    route, device, token = running_route_with_phone(tenant, shipments=False)
    # A van on the route, so its phone's fixes move a vehicle on the dispatcher's map.
    van = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    route.vehicle = van
    route.save(update_fields=["vehicle"])
    devices = [{"id": device.pk, "token": token}]
    with organization_scope(tenant.organization):
        for n in range(1, phones):
            other, raw = device_create(
                organization=tenant.organization, carrier=tenant.carrier, name=f"phone {n}"
            )
            devices.append({"id": other.pk, "token": raw})
    client = Client()
    client.force_login(tenant.user(Role.DISPATCHER))
    return {
        "organization_id": tenant.organization.pk,
        "route_id": route.pk,
        "devices": devices,
        "session": client.cookies["sessionid"].value,
    }


def relay(events: int, receiver: str) -> dict:
    tenant = build_tenant("faults-relay")
    actor = actor_for_user(tenant.user(Role.ADMIN), organization_slug=tenant.organization.slug)
    with organization_scope(tenant.organization):
        endpoint, _secret = endpoint_create(
            actor=actor, name="faults", url=receiver, event_types=["shipment.created"]
        )
        items = [
            {
                "reference": f"FAULT-{n:06d}",
                "barcode": f"FAULT-{n:06d}",
                "recipient_name": "Recipient",
                "address_line1": "Av. del Mar 1",
                "city": "La Serena",
                "country_code": "CL",
            }
            for n in range(events)
        ]
        with transaction.atomic():
            shipments_bulk_create(actor=actor, items=items)
    return {"organization_id": tenant.organization.pk, "endpoint_id": endpoint.pk}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["ingest", "relay"])
    parser.add_argument("--phones", type=int, default=20)
    parser.add_argument("--events", type=int, default=4000)
    # Never answered here (no internet): deliveries wait for their retries, which is not what
    # the relay scenario looks at (it counts the deliveries the relay's subscriber created).
    parser.add_argument("--receiver", default="https://hooks.example.com/faults")
    args = parser.parse_args()
    if args.what == "ingest":
        print(json.dumps(ingest(args.phones)))
    else:
        print(json.dumps(relay(args.events, args.receiver)))


if __name__ == "__main__":
    main()
