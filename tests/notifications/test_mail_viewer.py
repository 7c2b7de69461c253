"""The captured-mail viewer (/n/dev/mail/): off unless configured, for staff and organization
admins only, newest first and paginated, the HTML part sandboxed, and no file outside the
sink's folder reachable."""

from __future__ import annotations

import pytest
from django.test import Client

from control_tower.tenancy.roles import Role
from notifications.mailsink import store_message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MESSAGE = (
    "From: Logística Demo <noreply@example.cl>\r\n"
    "To: begona@example.cl\r\n"
    "Subject: =?utf-8?b?VHUgcGVkaWRvIGxsZWfDsyDinIU=?=\r\n"
    "Date: Sun, 06 Dec 2026 09:00:00 +0000\r\n"
    "Message-ID: <k1@ct.example.com>\r\n"
    "List-Unsubscribe: <https://ct.example.com/n/unsubscribe/t/>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b"\r\n'
    "\r\n"
    "--b\r\n"
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
    "Hola Begoña, tu pedido llegó.\r\n"
    "--b\r\n"
    'Content-Type: text/html; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
    "<p>Hola <b>Begoña</b></p><script>alert(1)</script>\r\n"
    "--b--\r\n"
).encode()


@pytest.fixture
def mail_dir(tmp_path, settings):
    directory = tmp_path / "mail"
    settings.NOTIFICATIONS_MAIL_VIEWER_DIR = str(directory)
    directory.mkdir()
    return directory


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stored(mail_dir, content=MESSAGE):
    return store_message(
        mail_dir, content, mail_from="noreply@example.cl", rcpt_tos=["begona@example.cl"]
    ).name


def test_an_owner_lists_and_reads_a_captured_message(tenant, mail_dir):
    name = stored(mail_dir)
    owner = client_for(tenant.user(Role.OWNER))

    listing = owner.get("/n/dev/mail/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Tu pedido llegó ✅" in page
    assert "begona@example.cl" in page
    assert f"/n/dev/mail/{name}/" in page

    detail = owner.get(f"/n/dev/mail/{name}/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "Hola Begoña, tu pedido llegó." in body  # the text part
    assert "&lt;https://ct.example.com/n/unsubscribe/t/&gt;" in body  # headers, escaped
    assert f'src="/n/dev/mail/{name}/html/"' in body and "sandbox" in body
    assert "<script>alert(1)</script>" not in body  # the HTML only ever goes to the iframe
    assert f"/n/dev/mail/{name}/raw/" in body


def test_the_html_part_is_served_under_a_strict_policy(tenant, mail_dir):
    name = stored(mail_dir)
    response = client_for(tenant.user(Role.ADMIN)).get(f"/n/dev/mail/{name}/html/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<p>Hola <b>Begoña</b></p>" in response.content.decode()
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "script-src" not in policy  # no script source at all
    assert "frame-ancestors 'self'" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_raw_source_is_plain_text(tenant, mail_dir):
    name = stored(mail_dir)
    response = client_for(tenant.user(Role.OWNER)).get(f"/n/dev/mail/{name}/raw/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.startswith(b"Return-Path: <noreply@example.cl>\r\n")
    assert MESSAGE in response.content


def test_staff_without_an_organization_may_read(db, mail_dir):
    stored(mail_dir)
    staff = UserFactory(is_staff=True)
    assert client_for(staff).get("/n/dev/mail/").status_code == 200


@pytest.mark.parametrize(
    "role", [Role.DISPATCHER, Role.OPS_MANAGER, Role.CARRIER_USER, Role.DRIVER]
)
def test_other_roles_are_refused(tenant, mail_dir, role):
    name = stored(mail_dir)
    client = client_for(tenant.user(role))
    for url in ("/n/dev/mail/", f"/n/dev/mail/{name}/", f"/n/dev/mail/{name}/raw/"):
        assert client.get(url).status_code == 403


def test_a_visitor_is_sent_to_the_login_page(db, mail_dir):
    name = stored(mail_dir)
    for url in ("/n/dev/mail/", f"/n/dev/mail/{name}/html/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_without_the_setting_the_viewer_does_not_exist(tenant, settings, tmp_path):
    name = stored(tmp_path)
    settings.NOTIFICATIONS_MAIL_VIEWER_DIR = ""
    owner = client_for(tenant.user(Role.OWNER))
    assert owner.get("/n/dev/mail/").status_code == 404
    assert owner.get(f"/n/dev/mail/{name}/").status_code == 404
    assert Client().get("/n/dev/mail/").status_code == 404  # not even a login page


def test_the_viewer_only_answers_get(tenant, mail_dir):
    assert client_for(tenant.user(Role.OWNER)).post("/n/dev/mail/").status_code == 405


def test_no_path_reaches_outside_the_folder(tenant, mail_dir, tmp_path):
    secret = tmp_path / "secret.eml"
    secret.write_bytes(b"Subject: secret\r\n\r\nsecret\r\n")
    # A name of the sink's form that is a symlink to a file outside the folder.
    link = mail_dir / "00000000000000000001-aaaaaaaaaaaa.eml"
    link.symlink_to(secret)
    (mail_dir / "notes.eml").write_bytes(b"Subject: not the sink's\r\n\r\n")
    owner = client_for(tenant.user(Role.OWNER))
    for name in (
        "..%2Fsecret.eml",
        "..%252Fsecret.eml",
        "%2E%2E",
        "notes.eml",
        link.name,
        "00000000000000000002-aaaaaaaaaaaa.eml",  # well formed, missing
    ):
        for suffix in ("", "html/", "raw/"):
            response = owner.get(f"/n/dev/mail/{name}/{suffix}")
            assert response.status_code == 404, (name, suffix)
            assert b"secret" not in response.content
    listing = owner.get("/n/dev/mail/").content.decode()
    assert "not the sink" not in listing and link.name not in listing


def test_the_list_is_newest_first_and_paginated(tenant, mail_dir):
    for i in range(57):
        stored(mail_dir, f"To: r{i:02d}@example.cl\r\nSubject: message {i:02d}\r\n\r\nx".encode())
    owner = client_for(tenant.user(Role.OWNER))
    first = owner.get("/n/dev/mail/").content.decode()
    assert first.index("message 56") < first.index("message 55")
    assert "message 07" in first and "message 06" not in first  # 50 a page
    assert "Page 1 of 2" in first
    second = owner.get("/n/dev/mail/?page=2").content.decode()
    assert "message 06" in second and "message 00" in second and "message 07" not in second
    assert owner.get("/n/dev/mail/?page=99").status_code == 200  # the last page, not an error
