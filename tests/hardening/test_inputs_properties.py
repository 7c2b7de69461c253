"""Issue 18, "proven, not promised": property tests over every device protocol (OsmAnd query,
form and Traccar Client JSON on the ASGI fast path; OwnTracks; native batch; GPX; POD
multipart). Whatever a device sends: never a 5xx, and a refused request stores nothing.

Values mix plausible fixes with what broke the server before: NUL and lone surrogates, huge
and non-finite numbers, Unicode digits, far-off years, deep and odd nesting, random bytes.
Examples are bounded (EXAMPLES each) so the whole file runs in well under a minute."""

from __future__ import annotations

import base64
import datetime as dt
import json
from io import BytesIO
from urllib.parse import quote

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from control_tower.tenancy.roles import Role
from tests.factories import ShipmentFactory
from tests.tracking.asgi_client import AsgiClient, run
from tracking.models import ProofOfDelivery

EXAMPLES = 40
bounded = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NOW = int(timezone.now().timestamp()) - 600
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "a\ud800",
    "\udfff",
    "NaN",
    "inf",
    "-Infinity",
    "1e400",
    "9" * 400,
    "1_0",
    "\u0661\u0660",
    "-1",
    "",
    " ",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "4845-01-01T00:00:00Z",
]
texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12))
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.just(10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-100, max_value=100),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def mostly(valid, hostile=values):
    """Half the examples are clean (every field valid, so the request should be stored),
    the other half mix in hostile values: one draw per example decides (`st.shared`)."""
    dirty = st.shared(st.booleans(), key="dirty")
    return dirty.flatmap(lambda is_dirty: st.one_of(valid, hostile) if is_dirty else valid)


lats = mostly(st.floats(min_value=1, max_value=89))  # not 0,0: "no fix yet" is refused
lons = mostly(st.floats(min_value=-179, max_value=179))
times = mostly(st.integers(min_value=NOW - 3600, max_value=NOW))
iso_times = mostly(
    st.integers(min_value=NOW - 3600, max_value=NOW).map(
        lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
    )
)
measures = mostly(st.floats(min_value=0, max_value=50))
labels = mostly(st.text(alphabet="abc123-", max_size=10, min_size=1))


def as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def raw_json(value) -> bytes:
    """JSON as a client may write it: NaN allowed, lone surrogates as \\u escapes."""
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(st.binary(max_size=40), st.integers(1, 3000).map(lambda n: nested(n).encode()))


def stored_pings(device) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping WHERE device_id = %s", [device.pk])
        return cursor.fetchone()[0]


def check(response, before: int, after: int) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert after == before, "a refused request stored something"
        assert "error" in response.json()


# ---------------------------------------------------------------------------------------------
# The ASGI fast path: OsmAnd query and form, Traccar Client JSON, OwnTracks
# ---------------------------------------------------------------------------------------------

osmand_params = st.fixed_dictionaries(
    {"id": mostly(st.just("1"), texts), "lat": lats, "lon": lons, "timestamp": times},
    optional={
        **{key: measures for key in ("speed", "bearing", "altitude", "accuracy", "batt")},
        "valid": mostly(st.sampled_from(["true", "false", "1", "0"])),
        "location": values,
        "note": labels,
    },
)


def urlencoded(params: dict) -> str:
    return "&".join(
        f"{quote(key, safe='', errors='surrogatepass')}="
        f"{quote(as_text(value), safe='', errors='surrogatepass')}"
        for key, value in params.items()
    )


@pytest.mark.django_db(transaction=True)
@bounded
@given(params=osmand_params, as_form=st.booleans())
def test_osmand_query_and_form(tenant, device_for, params, as_form):
    device, token = device_for(tenant, name="osmand")
    client, before = AsgiClient(), stored_pings(device)
    if as_form:
        response = client.post(f"/ingest/osmand/{token}/", urlencoded(params))
    else:
        url = f"/ingest/osmand/{token}/?{urlencoded(params)}"
        [response] = run(lambda c: c.get(url))  # AsgiClient.get would replace the query
    check(response, before, stored_pings(device))


traccar_items = st.fixed_dictionaries(
    {
        "location": mostly(
            st.fixed_dictionaries(
                {
                    "timestamp": times,
                    "coords": mostly(
                        st.fixed_dictionaries(
                            {"latitude": lats, "longitude": lons},
                            optional={"speed": measures, "heading": measures, "accuracy": measures},
                        )
                    ),
                },
                optional={"odometer": measures, "extras": values},
            ),
        )
    },
    optional={"device_id": labels},
)


@pytest.mark.django_db(transaction=True)
@bounded
@given(
    payload=mostly(st.one_of(traccar_items, st.lists(traccar_items, max_size=3))),
    raw=mostly(st.none(), bodies),
)
def test_traccar_client_json(tenant, device_for, payload, raw):
    device, token = device_for(tenant, name="traccar")
    before = stored_pings(device)
    body = raw if raw is not None else raw_json(payload)
    response = AsgiClient().post(f"/ingest/osmand/{token}/", body, "application/json")
    check(response, before, stored_pings(device))


owntracks_messages = st.fixed_dictionaries(
    {"_type": mostly(st.just("location")), "lat": lats, "lon": lons, "tst": times},
    optional={
        **{key: measures for key in ("vel", "cog", "acc", "alt", "batt", "bs")},
        "tid": labels,
        "SSID": labels,
    },
)


@pytest.mark.django_db(transaction=True)
@bounded
@given(
    payload=mostly(st.one_of(owntracks_messages, st.lists(owntracks_messages, max_size=3))),
    raw=mostly(st.none(), bodies),
)
def test_owntracks(tenant, device_for, payload, raw):
    device, token = device_for(tenant, name="owntracks")
    before = stored_pings(device)
    auth = "Basic " + base64.b64encode(f"rk:{token}".encode()).decode()
    body = raw if raw is not None else raw_json(payload)
    response = AsgiClient().post(
        "/ingest/owntracks/", body, "application/json", HTTP_AUTHORIZATION=auth
    )
    check(response, before, stored_pings(device))


# ---------------------------------------------------------------------------------------------
# Django: native batch, GPX, POD multipart
# ---------------------------------------------------------------------------------------------

native_fixes = st.fixed_dictionaries(
    {"time": times, "lat": lats, "lon": lons},
    optional={
        **{key: measures for key in ("accuracy", "speed", "heading", "altitude", "battery")},
        "event_id": labels,
        "attributes": mostly(
            st.dictionaries(st.text(alphabet="abc", max_size=3), measures, max_size=2)
        ),
    },
)


@pytest.mark.django_db
@bounded
@given(
    payload=st.one_of(
        st.lists(native_fixes, max_size=3),
        st.fixed_dictionaries({"pings": st.lists(native_fixes, max_size=3)}),
        values,
    ),
    raw=mostly(st.none(), bodies),
)
def test_native_batch(tenant, device_for, device_client_for, payload, raw):
    device, token = device_for(tenant, name="native")
    before = stored_pings(device)
    body = raw if raw is not None else raw_json(payload)
    response = device_client_for(token).post(
        "/api/v1/ingest/pings", body, content_type="application/json"
    )
    check(response, before, stored_pings(device))


def xml_attr(value) -> str:
    return as_text(value).replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")


@pytest.mark.django_db
@bounded
@given(
    points=st.lists(st.tuples(lats, lons, iso_times, measures), min_size=1, max_size=3),
    raw=mostly(st.none(), bodies),
)
def test_gpx(tenant, device_for, api_client_for, points, raw):
    device, _ = device_for(tenant, name="gpx")
    before = stored_pings(device)
    track = "".join(
        f"<trkpt lat='{xml_attr(lat)}' lon='{xml_attr(lon)}'><time>{xml_attr(at)}</time>"
        f"<ele>{xml_attr(ele)}</ele></trkpt>"
        for lat, lon, at, ele in points
    )
    document = f"<gpx><trk><trkseg>{track}</trkseg></trk></gpx>".encode("utf-8", "surrogatepass")
    data = raw if raw is not None else document
    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        "/api/v1/ingest/gpx",
        {"file": SimpleUploadedFile("t.gpx", data), "device": device.pk},
        format="multipart",
    )
    check(response, before, stored_pings(device))


def jpeg() -> bytes:
    out = BytesIO()
    Image.new("RGB", (16, 12), (9, 99, 9)).save(out, format="JPEG")
    return out.getvalue()


# The test client encodes form fields as UTF-8: lone surrogates cannot be sent that way.
form_texts = texts.filter(lambda text: not any("\ud800" <= c <= "\udfff" for c in text))
form_values = st.one_of(form_texts, numbers.map(str), st.floats().map(str))


@pytest.mark.django_db
@bounded
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "lat": form_values,
            "lon": form_values,
            "captured_at": form_values,
            "recipient_name": form_values,
            "idempotency_key": form_values,
            "shipment": form_values,
        },
    ),
    photo=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_pod_multipart(tenant, device_for, device_client_for, fields, photo):
    parcel = ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(-71.2489, -29.9045, srid=4326),
    )
    _device, token = device_for(tenant, name="pod")
    body = {
        "shipment": parcel.pk,
        "idempotency_key": "pod-prop",
        "recipient_name": "Ana",
        **fields,
        "photos": [SimpleUploadedFile("d.jpg", photo if photo is not None else jpeg())],
    }
    before = ProofOfDelivery.dangerously_unscoped.count()
    response = device_client_for(token).post("/api/v1/ingest/pod", body, format="multipart")
    check(response, before, ProofOfDelivery.dangerously_unscoped.count())
