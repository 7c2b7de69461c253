"""The customer tracking page `/t/<token>` over HTTP: the same 404 for every bad token, noindex
and a strict CSP, Spanish and English, privacy (no exact position before "next", nothing of
other shipments or organizations), the recipient's forms (CSRF, idempotent, errors in plain
words), rate limits, the lost-link lookup, POD signed links, and tokens kept out of the logs."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client, override_settings
from django.utils import timezone

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.scope import organization_scope
from portal.tracking_page.redaction import RedactTrackingTokens, redact
from tests.factories import (
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import (
    CustomerAction,
    DeliveryRating,
    DevicePosition,
    PodFile,
    ProofOfDelivery,
    ShipmentEvent,
    Stop,
)
from tracking.services.tracking_links import link_issue, link_revoke

VEHICLE = (-71.2123456, -29.8876543)  # lon, lat: must never show before "next"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


def make_route(org, *, stops=3):
    """A running route: stops 1..n with ETAs 30 min apart, the van's phone reporting."""
    now = timezone.now()
    driver = DriverFactory(organization=org, name="Camila Soto")
    vehicle = VehicleFactory(organization=org, carrier=driver.carrier)
    route = RouteFactory(
        organization=org,
        carrier=driver.carrier,
        hub=HubFactory(organization=org),
        driver=driver,
        vehicle=vehicle,
        status="in_progress",
    )
    made = []
    for sequence in range(1, stops + 1):
        stop = stop_with_shipments(
            route=route,
            sequence=sequence,
            address=f"Calle Privada {sequence}00",
            location=Point(-71.25 + sequence * 0.01, -29.9, srid=4326),
            eta=now + dt.timedelta(minutes=30 * sequence),
            eta_earliest=now + dt.timedelta(minutes=30 * sequence - 6),
            eta_latest=now + dt.timedelta(minutes=30 * sequence + 8),
        )
        shipment = stop.shipments.get()
        shipment.status = "out_for_delivery"
        shipment.recipient_name = f"Recipient Number{sequence}"
        shipment.save(update_fields=["status", "recipient_name"])
        ShipmentEvent.objects.create(
            organization=org,
            shipment=shipment,
            from_status="at_hub",
            to_status="out_for_delivery",
            occurred_at=now - dt.timedelta(hours=1),
        )
        made.append(stop)
    device = DeviceFactory(organization=org, carrier=driver.carrier, vehicle=vehicle)
    DevicePosition.objects.create(
        organization=org,
        device=device,
        fix_time=now - dt.timedelta(seconds=10),
        received_at=now,
        location=Point(*VEHICLE, srid=4326),
        source="native",
    )
    return route, made


def link_for(org, shipment, **kwargs):
    with organization_scope(org):
        return link_issue(shipment, actor="test", **kwargs)


@pytest.fixture
def world(tenant):
    org = tenant.organization
    with organization_scope(org):
        route, stops = make_route(org)
        shipment = stops[2].shipments.get()
    link, token = link_for(org, shipment)
    return {
        "org": org,
        "route": route,
        "stops": stops,
        "shipment": shipment,
        "link": link,
        "token": token,
    }


def get(token, client=None, **headers):
    return (client or Client()).get(f"/t/{token}", **headers)


# ---------------------------------------------------------------------------------------------
# Tokens, headers
# ---------------------------------------------------------------------------------------------


def test_the_page_is_served_noindex_with_a_strict_csp(world):
    response = get(world["token"])
    assert response.status_code == 200
    html = response.content.decode()
    assert '<meta name="robots" content="noindex' in html
    assert response["X-Robots-Tag"].startswith("noindex")
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    # The only inline element is the colours' <style>, with this response's nonce; no inline
    # script (the JSON blocks are data, not code).
    assert html.count("<style") == 1 and f'<style nonce="{nonce}">' in html
    for script in re.findall(r"<script[^>]*>", html):
        assert "src=" in script or 'type="application/json"' in script
    assert "Coquimbo" not in html  # nothing of the demo; the test org is shown
    assert world["org"].name in html


def test_unknown_revoked_and_expired_tokens_get_one_identical_404(world):
    org, shipment = world["org"], world["shipment"]
    revoked, revoked_token = link_for(org, shipment)
    with organization_scope(org):
        link_revoke(revoked, actor="test")
    expired, expired_token = link_for(org, shipment)
    type(expired).dangerously_unscoped.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    token = world["token"]
    altered = token[:-1] + ("x" if token[-1] != "x" else "y")
    answers = [get(t) for t in ("A" * 32, revoked_token, expired_token, "short", altered)]
    assert {r.status_code for r in answers} == {404}
    assert len({r.content for r in answers}) == 1
    assert all(r["X-Robots-Tag"].startswith("noindex") for r in answers)
    assert get(world["token"]).status_code == 200


def test_views_are_rate_limited_per_token_and_per_address(world, settings):
    settings.TRACKING_VIEWS_PER_TOKEN = 3
    answers = [get(world["token"]).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert Client().get(f"/t/{world['token']}/state").status_code == 429
    ratelimit_reset()
    settings.TRACKING_VIEWS_PER_TOKEN = 100
    settings.TRACKING_VIEWS_PER_IP = 2
    assert [get("B" * 32).status_code for _ in range(3)] == [404, 404, 429]


# ---------------------------------------------------------------------------------------------
# Languages
# ---------------------------------------------------------------------------------------------


def test_spanish_by_default_english_from_the_browser_and_the_link_first(world):
    org, shipment = world["org"], world["shipment"]
    assert world["org"].default_language == "es"
    spanish = get(world["token"]).content.decode()
    assert '<html lang="es">' in spanish and "En reparto" in spanish
    assert "2 paradas antes de la tuya" in spanish
    english = get(world["token"], HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8").content.decode()
    assert '<html lang="en">' in english and "Out for delivery" in english
    assert "2 stops before yours" in english
    _link, english_token = link_for(org, shipment, language="en")
    chosen = get(english_token, HTTP_ACCEPT_LANGUAGE="es-CL").content.decode()
    assert '<html lang="en">' in chosen
    switched = Client().get(f"/t/{english_token}?lang=es").content.decode()
    assert '<html lang="es">' in switched


# ---------------------------------------------------------------------------------------------
# Privacy
# ---------------------------------------------------------------------------------------------


def _exact_vehicle_in(text: str) -> bool:
    return "-29.88765" in text or "-71.21235" in text or "-29.8876" in text


def test_before_next_no_exact_position_and_nothing_of_other_stops(world):
    html = get(world["token"]).content.decode()
    state = Client().get(f"/t/{world['token']}/state").json()
    with organization_scope(world["org"]):
        others = [(stop, stop.shipments.get()) for stop in world["stops"][:2]]
    for text in (html, repr(state)):
        assert not _exact_vehicle_in(text)
        for other, other_shipment in others:
            assert other_shipment.reference not in text
            assert other_shipment.recipient_name not in text
            assert other.address not in text
            assert f"{other.location.x:.2f}" not in text
    assert state["live"] is False and state["vehicle"] is None
    assert state["distance_text"] == "El conductor está a unos 2 km"
    assert 'id="map-section" aria-labelledby="map-heading" hidden' in html


def test_when_next_the_driver_is_shown_exactly(world):
    with organization_scope(world["org"]):
        Stop.objects.filter(pk__in=[s.pk for s in world["stops"][:2]]).update(status="completed")
    html = get(world["token"]).content.decode()
    assert _exact_vehicle_in(html)
    state = Client().get(f"/t/{world['token']}/state").json()
    assert state["live"] is True
    assert state["vehicle"]["lat"] == pytest.approx(-29.88765)
    # Still nothing of the others: not their addresses, not the route driven before.
    with organization_scope(world["org"]):
        others = [(stop, stop.shipments.get()) for stop in world["stops"][:2]]
    for other, other_shipment in others:
        assert other.address not in html
        assert other_shipment.recipient_name not in html
        assert f"{other.location.x:.3f}" not in html


def test_another_organizations_link_shows_only_its_own_shipment(world, other_tenant):
    other_org = other_tenant.organization
    with organization_scope(other_org):
        _route, their_stops = make_route(other_org)
        theirs = their_stops[0].shipments.get()
    _link, their_token = link_for(other_org, theirs)
    html = get(their_token).content.decode()
    assert other_org.name in html and world["org"].name not in html
    assert world["shipment"].reference not in html and theirs.reference in html
    ours = get(world["token"]).content.decode()
    assert theirs.reference not in ours and other_org.name not in ours
    # A form of our link cannot act on their shipment (the token decides the shipment).
    client = Client()
    client.post(
        f"/t/{world['token']}/instructions", {"text": "Gate 42", "key": "key-cross-tenant-1"}
    )
    with organization_scope(other_org):
        theirs.refresh_from_db()
        assert theirs.delivery_instructions == ""


# ---------------------------------------------------------------------------------------------
# The recipient's say
# ---------------------------------------------------------------------------------------------


def csrf_client(token):
    client = Client(enforce_csrf_checks=True)
    html = client.get(f"/t/{token}").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return client, csrf, html


def test_instructions_need_csrf_are_idempotent_and_recorded(world):
    client, csrf, html = csrf_client(world["token"])
    url = f"/t/{world['token']}/instructions"
    assert Client(enforce_csrf_checks=True).post(url, {"text": "x"}).status_code == 403
    form = {"text": "Código portón 1234", "key": "form-key-0001", "csrfmiddlewaretoken": csrf}
    first = client.post(url, form)
    assert first.status_code == 303
    assert first["Location"] == f"/t/{world['token']}?done=instructions#instructions"
    again = client.post(url, form)
    assert again.status_code == 303
    org = world["org"]
    with organization_scope(org):
        world["shipment"].refresh_from_db()
        assert world["shipment"].delivery_instructions == "Código portón 1234"
        assert CustomerAction.objects.filter(kind="instructions").count() == 1
    page = client.get(first["Location"]).content.decode()
    assert "Gracias. Tu conductor verá tus instrucciones." in page
    assert "Código portón 1234" in page


def test_an_error_is_said_in_plain_words_in_the_recipients_language(world):
    client, csrf, _html = csrf_client(world["token"])
    response = client.post(
        f"/t/{world['token']}/instructions",
        {"text": "x" * 1001, "key": "form-key-0002", "csrfmiddlewaretoken": csrf},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Las instrucciones deben tener menos de 1.000 caracteres." in html
    assert 'aria-invalid="true"' in html


def test_not_home_then_reschedule(world):
    client, csrf, html = csrf_client(world["token"])
    assert 'id="not-home"' in html and 'id="reschedule"' in html
    response = client.post(
        f"/t/{world['token']}/not-home", {"key": "form-key-0003", "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 303
    html = client.get(response["Location"]).content.decode()
    assert 'id="away-notice"' in html and 'id="not-home"' not in html
    option = re.search(r'name="option_id" id="option-1" value="([^"]+)"', html).group(1)
    response = client.post(
        f"/t/{world['token']}/reschedule",
        {"option_id": option, "key": "form-key-0004", "csrfmiddlewaretoken": csrf},
    )
    assert response.status_code == 303, response.content.decode()[:500]
    state = client.get(f"/t/{world['token']}/state").json()
    assert state["status"] == "at_hub"
    rescheduled = [s for s in state["timeline"] if s["key"] == "rescheduled"]
    assert rescheduled and rescheduled[0]["state"] == "done"
    assert state["eta"]["source"] == "promise"
    with organization_scope(world["org"]):
        assert not world["stops"][2].shipments.exists()  # off today's route


def test_rating_after_delivery_with_the_proof_of_delivery(world):
    org, shipment, stop = world["org"], world["shipment"], world["stops"][2]
    with organization_scope(org):
        Stop.objects.filter(pk=stop.pk).update(status="completed")
        shipment.status = "delivered"
        shipment.save(update_fields=["status"])
        pod = ProofOfDelivery.objects.create(
            organization=org,
            idempotency_key="pod-1",
            shipment=shipment,
            stop=stop,
            recipient_name="Ana",
            captured_at=timezone.now(),
            note="Front porch",
        )
        name = default_storage.save("pod/test-photo.webp", ContentFile(b"RIFF0000WEBPVP8 "))
        PodFile.objects.create(
            organization=org,
            pod=pod,
            kind="photo",
            storage_name=name,
            content_type="image/webp",
            size_bytes=16,
            width=1,
            height=1,
            sha256="0" * 64,
        )
    client, csrf, html = csrf_client(world["token"])
    assert "Prueba de entrega" in html and "Front porch" in html
    photo = re.search(r'<img src="(/pod-files/[^"]+)"', html).group(1)
    served = Client().get(photo)
    assert served.status_code == 200 and served["Content-Type"] == "image/webp"
    assert Client().get(photo[:-3] + "xx/").status_code == 403  # altered signature
    assert 'id="instructions"' not in html and 'id="rate"' in html
    response = client.post(
        f"/t/{world['token']}/rate",
        {
            "stars": "5",
            "comment": "Muy amable",
            "key": "form-key-0005",
            "csrfmiddlewaretoken": csrf,
        },
    )
    assert response.status_code == 303
    html = client.get(response["Location"]).content.decode()
    assert 'id="rate"' not in html and 'id="done-notice"' in html
    assert 'id="rated-notice"' in client.get(f"/t/{world['token']}").content.decode()
    with organization_scope(org):
        assert DeliveryRating.objects.get(shipment=shipment).stars == 5


# ---------------------------------------------------------------------------------------------
# Lookup, logs, weight
# ---------------------------------------------------------------------------------------------


def test_lookup_by_reference_and_phone_digits_issues_a_new_link(world, other_tenant):
    org, shipment = world["org"], world["shipment"]
    with organization_scope(org):
        shipment.recipient_phone = "+56 9 8765 4321"
        shipment.save(update_fields=["recipient_phone"])
    client = Client()
    page = client.get(f"/track/{org.slug}/")
    assert page.status_code == 200 and page["X-Robots-Tag"].startswith("noindex")
    found = client.post(f"/track/{org.slug}/", {"reference": shipment.reference, "proof": "4321"})
    assert found.status_code == 303
    new_token = found["Location"].rsplit("/t/", 1)[1]
    assert new_token != world["token"] and get(new_token).status_code == 200
    wrong = client.post(f"/track/{org.slug}/", {"reference": shipment.reference, "proof": "0000"})
    unknown = client.post(f"/track/{org.slug}/", {"reference": "NOPE-1", "proof": "4321"})
    assert wrong.status_code == unknown.status_code == 400
    assert "No encontramos un pedido con esos datos" in wrong.content.decode()
    # Another organization's lookup never finds our shipment.
    theirs = client.post(
        f"/track/{other_tenant.organization.slug}/",
        {"reference": shipment.reference, "proof": "4321"},
    )
    assert theirs.status_code == 400
    assert Client().get("/track/no-such-org/").status_code == 404


def test_tokens_never_reach_the_logs(world, caplog):
    token = world["token"]
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/t/{token}?lang=en", "1.1", 200),
        None,
    )
    RedactTrackingTokens().filter(record)
    line = record.getMessage()
    assert token not in line
    assert f"/t/~{world['link'].token_hash[:16]}?lang=en" in line
    assert token not in redact(f"/ws/v1/track/{token}/")
    with caplog.at_level(logging.WARNING):
        Client().get(f"/t/{token[:-2]}zz")  # a 404: Django logs "Not Found: <path>"
        Client().get(f"/t/{token}/nope")
        Client(enforce_csrf_checks=True).post(f"/t/{token}/instructions", {"text": "x"})
    assert {r.name for r in caplog.records} >= {"django.request", "django.security.csrf"}
    assert all(token[:-2] not in r.getMessage() for r in caplog.records)
    assert any("/t/~" in r.getMessage() for r in caplog.records)


@override_settings(DEBUG=False)
def test_the_page_is_light(world):
    from django.contrib.staticfiles import finders

    html = get(world["token"]).content
    from pathlib import Path

    css = Path(finders.find("tracking/track.css")).read_bytes()
    js = Path(finders.find("tracking/track.js")).read_bytes()
    # Everything before the map (uncompressed; the wire is smaller): far under 150 KB.
    assert len(html) + len(css) + len(js) < 60_000
