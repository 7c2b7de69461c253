"""Signing per Standard Webhooks, checked against the specification's test vector and the
reference library; secrets at rest; rotation overlap."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from control_tower.tenancy.scope import organization_scope
from tests.webhooks.conftest import make_endpoint
from webhooks import services
from webhooks.models import WebhookEndpoint
from webhooks.secrets import Signer, decrypt, encrypt, new_secret, signer_for

# The test vector of the Standard Webhooks reference implementation:
# github.com/standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py,
# `test_sign_function` (the same vector is used by the other libraries' suites).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signer_matches_the_specification_test_vector():
    signer = Signer([VECTOR_SECRET])
    at = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
    signature = signer.signature(msg_id=VECTOR_MSG_ID, timestamp=at, body=VECTOR_PAYLOAD.encode())
    assert signature == VECTOR_SIGNATURE


def test_the_vector_by_hand_with_hmac_as_docs_webhooks_shows():
    # The plain-hmac receiving example of docs/WEBHOOKS.md, on the same vector.
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    signed = f"{VECTOR_MSG_ID}.{VECTOR_TIMESTAMP}.{VECTOR_PAYLOAD}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" == VECTOR_SIGNATURE


def test_new_secrets_have_the_standard_format_and_are_stored_encrypted(tenant):
    raw = new_secret()
    assert raw.startswith("whsec_")
    assert len(base64.b64decode(raw.removeprefix("whsec_"))) == 32
    token = encrypt(raw)
    assert raw not in token and decrypt(token) == raw

    endpoint, secret = make_endpoint(tenant, "https://hooks.example.com/in")
    with organization_scope(tenant.organization):
        stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert secret not in stored.secret_encrypted
    assert decrypt(stored.secret_encrypted) == secret


def test_rotation_signs_with_both_secrets_during_the_overlap(tenant):
    endpoint, old = make_endpoint(tenant, "https://hooks.example.com/in")
    with organization_scope(tenant.organization):
        endpoint, new = services.endpoint_rotate_secret(endpoint=endpoint, overlap_hours=24)
    now = datetime.now(tz=UTC)
    body = b'{"type":"shipment.status_changed"}'
    header = signer_for(endpoint, now=now).signature(msg_id="msg_1", timestamp=now, body=body)
    assert len(header.split(" ")) == 2
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    # Each secret verifies with the reference library: receivers can switch at any time.
    assert Webhook(old).verify(body, headers) == {"type": "shipment.status_changed"}
    assert Webhook(new).verify(body, headers) == {"type": "shipment.status_changed"}

    # After the overlap only the new secret signs.
    later = endpoint.previous_secret_until.replace(microsecond=0)
    single = signer_for(endpoint, now=later.replace(year=later.year + 1))
    only_new = single.signature(msg_id="msg_1", timestamp=now, body=body)
    headers["webhook-signature"] = only_new
    assert Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_rotation_without_overlap_replaces_the_secret_at_once(tenant):
    endpoint, old = make_endpoint(tenant, "https://hooks.example.com/in")
    with organization_scope(tenant.organization):
        endpoint, new = services.endpoint_rotate_secret(endpoint=endpoint, overlap_hours=0)
    now = datetime.now(tz=UTC)
    header = signer_for(endpoint, now=now).signature(msg_id="m", timestamp=now, body=b"{}")
    headers = {"webhook-id": "m", "webhook-timestamp": str(int(now.timestamp()))}
    headers["webhook-signature"] = header
    assert " " not in header
    Webhook(new).verify(b"{}", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(b"{}", headers)
