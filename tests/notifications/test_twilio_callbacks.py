"""Twilio's callbacks: the X-Twilio-Signature check (Twilio's published example, and signatures
computed here by an independent implementation), status reports and inbound messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory

from notifications.channels.base import OutgoingSms
from notifications.channels.registry import get_sms_backend
from notifications.channels.twilio import TwilioSmsBackend, twilio_signature

TOKEN = "callback-test-token"
# The worked example of Twilio's "Webhooks security" guide
# (https://www.twilio.com/docs/usage/security#validating-requests): auth token 12345.
PUBLISHED_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PUBLISHED_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
PUBLISHED_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def reference_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Written from the guide's steps, independently of the backend's code: take the full URL,
    append each POST parameter's name then value, sorted by name, HMAC-SHA1 with the auth
    token, base64."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    mac = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_post(url_path: str, params: dict[str, str], *, signature: str, host="ct.example.com"):
    return RequestFactory().post(
        url_path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        secure=True,
        HTTP_HOST=host,
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


@pytest.fixture
def backend(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.ALLOWED_HOSTS = ["ct.example.com", "mycompany.com", "internal"]
    settings.PUBLIC_BASE_URL = ""
    return TwilioSmsBackend()


def test_the_signature_matches_twilios_published_example():
    assert twilio_signature("12345", PUBLISHED_URL, PUBLISHED_PARAMS) == PUBLISHED_SIGNATURE
    assert reference_signature("12345", PUBLISHED_URL, PUBLISHED_PARAMS) == PUBLISHED_SIGNATURE


def test_the_published_example_verifies_as_a_request(backend, settings):
    settings.TWILIO_AUTH_TOKEN = "12345"
    request = signed_post(
        "/myapp.php?foo=1&bar=2",
        PUBLISHED_PARAMS,
        signature=PUBLISHED_SIGNATURE,
        host="mycompany.com",
    )
    assert backend.verify_request(request)
    tampered = signed_post(
        "/myapp.php?foo=1&bar=3",
        PUBLISHED_PARAMS,
        signature=PUBLISHED_SIGNATURE,
        host="mycompany.com",
    )
    assert not backend.verify_request(tampered)


STATUS = {
    "SmsSid": "SM" + "1" * 32,
    "SmsStatus": "delivered",
    "MessageStatus": "delivered",
    "To": "+56961234567",
    "MessageSid": "SM" + "1" * 32,
    "AccountSid": "AC" + "0" * 32,
    "From": "+15005550006",
    "ApiVersion": "2010-04-01",
}
STATUS_PATH = "/n/sms/twilio/status/?key=7b1f3c2e-0d9a-4f57-9d1e-000000000001"


def test_a_status_callback_signed_with_our_token_is_accepted(backend):
    url = f"https://ct.example.com{STATUS_PATH}"
    request = signed_post(STATUS_PATH, STATUS, signature=reference_signature(TOKEN, url, STATUS))
    assert backend.verify_request(request)


@pytest.mark.parametrize(
    "forgery",
    ["wrong token", "changed field", "other url", "no signature", "no token configured"],
)
def test_a_forged_or_altered_callback_is_refused(backend, settings, forgery):
    url = f"https://ct.example.com{STATUS_PATH}"
    params = dict(STATUS)
    signature = reference_signature(TOKEN, url, params)
    path = STATUS_PATH
    if forgery == "wrong token":
        signature = reference_signature("another-token", url, params)
    elif forgery == "changed field":
        params["MessageStatus"] = "failed"
    elif forgery == "other url":
        path = STATUS_PATH.replace("000000000001", "000000000002")
    elif forgery == "no signature":
        signature = ""
    elif forgery == "no token configured":
        settings.TWILIO_AUTH_TOKEN = ""
    assert not backend.verify_request(signed_post(path, params, signature=signature))


def test_behind_a_proxy_the_public_url_is_the_signed_one(backend, settings):
    """The proxy forwards to http://internal/…; Twilio signed https://ct.example.com/…"""
    settings.PUBLIC_BASE_URL = "https://ct.example.com"
    signature = reference_signature(TOKEN, f"https://ct.example.com{STATUS_PATH}", STATUS)
    request = RequestFactory().post(
        STATUS_PATH,
        data=urlencode(STATUS),
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="internal",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert backend.verify_request(request)


def test_a_signature_over_the_url_with_its_default_port_is_accepted(backend):
    url = f"https://ct.example.com:443{STATUS_PATH}"
    request = signed_post(STATUS_PATH, STATUS, signature=reference_signature(TOKEN, url, STATUS))
    assert backend.verify_request(request)


@pytest.mark.parametrize(
    ("twilio_status", "error_code", "normalized"),
    [
        ("queued", "", "sent"),
        ("accepted", "", "sent"),
        ("sending", "", "sent"),
        ("sent", "", "sent"),
        ("delivered", "", "delivered"),
        ("read", "", "delivered"),
        ("undelivered", "30003", "failed"),
        ("failed", "30008", "failed"),
    ],
)
def test_parse_status_normalizes_twilios_message_status(
    backend, twilio_status, error_code, normalized
):
    params = {**STATUS, "MessageStatus": twilio_status, "SmsStatus": twilio_status}
    if error_code:
        params["ErrorCode"] = error_code
    report = backend.parse_status(signed_post(STATUS_PATH, params, signature="x"))
    assert report.status == normalized
    assert report.provider_message_id == "SM" + "1" * 32
    assert report.idempotency_key == "7b1f3c2e-0d9a-4f57-9d1e-000000000001"
    assert report.error_code == error_code
    assert twilio_status in report.detail
    if error_code:
        assert error_code in report.detail


def test_parse_status_without_a_key_in_the_url(backend):
    report = backend.parse_status(signed_post("/n/sms/twilio/status/", STATUS, signature="x"))
    assert report.idempotency_key == ""
    assert report.status == "delivered"


def test_parse_inbound_reads_from_to_and_body(backend):
    inbound = {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "+56961234567",
        "To": "+15005550006",
        "Body": "STOP",
        "NumMedia": "0",
    }
    url = "https://ct.example.com/n/sms/twilio/inbound/"
    request = signed_post(
        "/n/sms/twilio/inbound/", inbound, signature=reference_signature(TOKEN, url, inbound)
    )
    assert backend.verify_request(request)
    message = backend.parse_inbound(request)
    assert (message.from_number, message.to_number, message.body) == (
        "+56961234567",
        "+15005550006",
        "STOP",
    )


class _Receiver:
    """A plain HTTP endpoint that keeps what it was sent (stands in for the platform's URL)."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002
                return

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def as_django_request(self, index: int = 0):
        path, headers, body = self.received[index]
        return RequestFactory().post(
            path,
            data=body,
            content_type=headers["Content-Type"],
            HTTP_HOST=headers["Host"],
            HTTP_X_TWILIO_SIGNATURE=headers.get("X-Twilio-Signature", ""),
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_sent_message_reports_back_through_its_signed_status_callback(twilio_server, settings):
    """Send through the backend, let the Twilio-shaped server report delivery to the
    StatusCallback URL as Twilio would, and read that callback back through the backend."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.PUBLIC_BASE_URL = ""
    receiver = _Receiver()
    try:
        backend = get_sms_backend("twilio")
        result = backend.send(
            OutgoingSms(
                to="+56961234567",
                body="Entregado",
                sender="",
                idempotency_key="e2e-key-1",
                status_callback_url=f"http://127.0.0.1:{receiver.port}/n/sms/twilio/status/",
            )
        )
        response = twilio_server.report_status(
            result.provider_message_id, "undelivered", error_code="30003"
        )
        assert response.status_code == 200
        request = receiver.as_django_request()
        assert backend.verify_request(request)
        report = backend.parse_status(request)
        assert report.provider_message_id == result.provider_message_id
        assert report.idempotency_key == "e2e-key-1"
        assert (report.status, report.error_code) == ("failed", "30003")

        twilio_server.send_inbound(
            f"http://127.0.0.1:{receiver.port}/n/sms/twilio/inbound/",
            from_number="+56961234567",
            to_number="+15005550006",
            body="STOP",
        )
        inbound_request = receiver.as_django_request(1)
        assert backend.verify_request(inbound_request)
        assert backend.parse_inbound(inbound_request).body == "STOP"

        settings.TWILIO_AUTH_TOKEN = "rotated-token"  # a callback signed with the old token
        assert not backend.verify_request(receiver.as_django_request())
    finally:
        receiver.stop()
