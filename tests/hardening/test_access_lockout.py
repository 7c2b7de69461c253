"""Finding 3 (issue 18): 15 wrong passwords in a row, then the right one logged in at once.
Now django-axes locks a user name on a client IP after AXES_FAILURE_LIMIT failures, on the
site's login and the admin's, with a 429 page and Retry-After; the driver app's sign-in keeps
its own limit and answers Retry-After too."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_lockouts():
    reset()
    yield
    reset()


def _post(client, path, username, password):
    return client.post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_out_even_the_right_one(tenant, client, path):
    user = tenant.user(Role.OWNER)
    if path.startswith("/admin/"):
        user.is_staff = user.is_superuser = True
        user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _post(client, path, user.username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    response = _post(client, path, user.username, "wrong-password")
    assert response.status_code == 429
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_MINUTES * 60
    assert b"Too many failed log-ins" in response.content

    response = _post(client, path, user.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username=user.username).exists()


def test_lockout_is_per_user_name(tenant, client):
    locked = tenant.user(Role.OWNER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _post(client, "/accounts/login/", locked.username, "wrong-password")
    other = tenant.user(Role.DISPATCHER)
    response = _post(client, "/accounts/login/", other.username, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(other.pk)


def test_cool_off_over_lets_the_right_password_in(tenant, client):
    user = tenant.user(Role.OWNER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _post(client, "/accounts/login/", user.username, "wrong-password")
    assert _post(client, "/accounts/login/", user.username, PASSWORD).status_code == 429
    reset(username=user.username)  # what the cool-off's end (or an operator) does
    response = _post(client, "/accounts/login/", user.username, PASSWORD)
    assert response.status_code == 302


def test_a_success_before_the_limit_resets_the_count(tenant, client):
    user = tenant.user(Role.OWNER)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _post(client, "/accounts/login/", user.username, "wrong-password")
    assert _post(client, "/accounts/login/", user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _post(client, "/accounts/login/", user.username, "wrong-password")
    assert _post(client, "/accounts/login/", user.username, PASSWORD).status_code == 302


def test_driver_sign_in_limit_answers_retry_after(tenant, api_client_for):
    ratelimit_reset()
    try:
        client = api_client_for()
        email = tenant.user(Role.DRIVER).username
        statuses = [
            client.post(
                "/api/v1/driver/session/",
                {
                    "email": email,
                    "password": "wrong",
                    "install_id": "0f6c1a2e-4b7d-4e1f-9a55-7d3c2b1a0e99",
                    "device_name": "Pixel 7",
                },
                format="json",
            )
            for _ in range(12)
        ]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert limited[0].json()["error"] == "too_many_attempts"
        assert 1 <= int(limited[0]["Retry-After"]) <= 3600
    finally:
        ratelimit_reset()
