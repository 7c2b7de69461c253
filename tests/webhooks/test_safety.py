"""Where webhooks may go: http(s) only, private addresses refused after DNS resolution unless
the organization's allow list names them, the checked address pinned, no redirects followed,
response bodies truncated."""

from __future__ import annotations

import socket

import pytest

from control_tower.errors import DomainError
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.webhooks.conftest import allow_localhost, deliveries, emit_status, make_endpoint, pump
from webhooks import services
from webhooks.models import WebhookAttempt
from webhooks.safety import RefusedDestination, parse_url, resolve
from webhooks.sender import host_header, pinned_url


def _last_attempt(endpoint):
    with dangerously_all_organizations():
        return WebhookAttempt.dangerously_unscoped.filter(delivery__endpoint=endpoint).latest("id")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http:///no-host",
        "https://user:pass@example.com/hook",
        "https://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_bad_urls_are_refused_naming_the_field(url):
    with pytest.raises(DomainError) as caught:
        parse_url(url)
    assert "url" in caught.value.fields


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.5", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1", "224.0.0.1"],
)
def test_private_loopback_link_local_and_multicast_addresses_are_refused(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(RefusedDestination, match=f"refused: private address {address}"):
        resolve(parse_url(f"http://{host}/hook"), [])


def test_the_allow_list_names_hosts_addresses_or_networks():
    target = parse_url("http://10.1.2.3:8080/hook")
    assert resolve(target, ["10.0.0.0/8"]) == "10.1.2.3"
    assert resolve(target, ["10.1.2.3"]) == "10.1.2.3"
    with pytest.raises(RefusedDestination):
        resolve(target, ["192.168.0.0/16", "localhost"])
    assert resolve(parse_url("http://127.0.0.1/"), ["127.0.0.0/8"]) == "127.0.0.1"


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    # One public and one private answer (a rebinding setup): refused as a whole.
    def two_answers(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(RefusedDestination, match="10.0.0.5"):
        resolve(parse_url("https://mixed.example.com/"), [])


def test_the_request_goes_to_the_checked_address_with_the_name_as_host():
    target = parse_url("https://hooks.example.com:8443/in?x=1")
    assert pinned_url(target, "93.184.216.34") == "https://93.184.216.34:8443/in?x=1"
    assert pinned_url(target, "2606:2800::1") == "https://[2606:2800::1]:8443/in?x=1"
    assert host_header(target) == "hooks.example.com:8443"
    assert host_header(parse_url("https://hooks.example.com/")) == "hooks.example.com"


def test_pinned_delivery_sends_the_name_in_the_host_header(tenant, receivers, monkeypatch):
    receiver = receivers()
    receiver.verify = False
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # the name resolves to the receiver's address
        return real("127.0.0.1" if host == "hooks.acme.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    endpoint, _ = make_endpoint(tenant, f"http://hooks.acme.test:{receiver.port}/hooks")
    emit_status(tenant, shipment_id=1, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)
    assert receiver.accepted()[0].headers["host"] == f"hooks.acme.test:{receiver.port}"


def test_loopback_is_refused_at_delivery_without_the_allow_list(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    # The allow list changes after the subscription: every delivery checks it again.
    with organization_scope(tenant.organization):
        services.settings_update(allowed_private_hosts=[])
    emit_status(tenant, shipment_id=1, status="delivered")
    pump()
    assert receiver.requests == 0
    attempt = _last_attempt(endpoint)
    assert attempt.error == "refused: private address 127.0.0.1"
    assert deliveries(endpoint_id=endpoint.pk)[0].status == "retrying"

    allow_localhost(tenant)
    pump(lambda: len(receiver.accepted()) == 1)
    assert deliveries(endpoint_id=endpoint.pk)[0].status == "succeeded"


def test_redirects_are_not_followed(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=1, status="delivered")
    pump()
    attempt = _last_attempt(endpoint)
    assert attempt.response_status == 302
    assert attempt.error.startswith("redirect 302 not followed")
    assert "169.254.169.254" in attempt.error
    assert deliveries(endpoint_id=endpoint.pk)[0].status == "retrying"


def test_response_bodies_are_truncated_to_2_kb(tenant, receivers):
    receiver = receivers(status=200)
    receiver.verify = False
    receiver.body = b"x" * 100_000
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=1, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)
    attempt = _last_attempt(endpoint)
    assert attempt.response_status == 200 and attempt.response_body == "x" * 2048


def test_large_error_bodies_are_kept_to_2_kb(tenant, receivers):
    receiver = receivers(status=500)
    receiver.verify = False
    receiver.body = b"E" * 100_000
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=1, status="delivered")
    pump()
    attempt = _last_attempt(endpoint)
    assert attempt.response_status == 500 and attempt.response_body == "E" * 2048


def test_the_allow_list_is_validated(tenant):
    with organization_scope(tenant.organization), pytest.raises(DomainError) as caught:
        services.settings_update(allowed_private_hosts=["localhost", "not a host!"])
    assert "allowed_private_hosts" in caught.value.fields
    with organization_scope(tenant.organization):
        saved = services.settings_update(allowed_private_hosts=["LocalHost", "10.0.0.0/8"])
    assert saved.allowed_private_hosts == ["10.0.0.0/8", "localhost"]
