"""The weekly scorecard e-mail through a real SMTP server (aiosmtpd): who gets what (a carrier
user only their carrier), the subject, both parts, breaches in words, the link, the Excel
attachment; once per week; send-now from the API, the command and the admin."""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from carriers.sla import digest
from carriers.sla.metrics import METRICS
from carriers.sla.models import ScorecardEmail
from carriers.sla.types import MetricValue
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.notifications.conftest import smtp_server  # noqa: F401 - the real SMTP fixture
from tests.sla.test_api import Day

pytestmark = pytest.mark.django_db

# Tuesday 1 December 2026, 07:30 in Santiago: the Tuesday 07:00 schedule is due and covers
# Monday 30 November (period_days=1), the day `Day` builds.
TUESDAY_0730 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def day(tenant):
    return Day(tenant)


def _schedule(tenant, recipients, carriers=(), **fields) -> ScorecardEmail:
    fields = {"weekday": 1, "hour": 7, "period_days": 1, **fields}
    with organization_scope(tenant.organization):
        schedule = ScorecardEmail.objects.create(
            organization=tenant.organization,
            name="Weekly carrier scorecard",
            created_at=TUESDAY_0730 - timedelta(days=30),
            **fields,
        )
        schedule.recipients.set([tenant.members[role] for role in recipients])
        schedule.carriers.set(carriers)
    return schedule


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    [attachment] = list(message.iter_attachments())
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    groups = [row[0] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)]
    return text, html, attachment, groups


def test_each_recipient_gets_the_scorecard_they_may_see(day, tenant, smtp_server, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = "https://tower.example.com"
    _schedule(tenant, [Role.OPS_MANAGER, Role.CARRIER_USER])
    outcome = digest.scorecard_emails_send_due(now=TUESDAY_0730)
    assert (outcome.sent, outcome.failed, outcome.skipped) == (2, 0, 0)
    by_to = {message["To"]: message for message in smtp_server.messages}
    ops_address = tenant.user(Role.OPS_MANAGER).email
    carrier_address = tenant.user(Role.CARRIER_USER).email
    assert set(by_to) == {ops_address, carrier_address}

    ops = by_to[ops_address]
    assert ops["Subject"].startswith("Weekly carrier scorecard: 2026-11-30 to 2026-11-30")
    assert "breach" in ops["Subject"]
    assert ops["Auto-Submitted"] == "auto-generated"
    assert tenant.organization.name in ops["From"]
    text, html, attachment, groups = _parts(ops)
    assert day.a.name in text and "Rival couriers" in text
    assert "On time: 66.7% [BREACH, target 95.0%]" in text
    assert "BREACH" in html and "#ffc7ce" in html  # in words and in colour
    assert "https://tower.example.com/reports/?from=2026-11-30&to=2026-11-30" in text
    assert attachment.get_filename() == "scorecard_2026-11-30_2026-11-30.xlsx"
    assert groups == [day.a.name, "Rival couriers", "Total"]

    text, html, _attachment, groups = _parts(by_to[carrier_address])
    assert day.a.name in text and "Rival couriers" not in text and "Rival couriers" not in html
    assert groups == [day.a.name, "Total"]


def test_it_is_sent_once_a_week(day, tenant, smtp_server):  # noqa: F811
    schedule = _schedule(tenant, [Role.OPS_MANAGER])
    assert digest.scorecard_emails_send_due(now=TUESDAY_0730).sent == 1
    assert digest.scorecard_emails_send_due(now=TUESDAY_0730 + timedelta(minutes=15)).sent == 0
    assert digest.scorecard_emails_send_due(now=TUESDAY_0730 + timedelta(days=6)).sent == 0
    assert len(smtp_server.messages) == 1
    schedule.refresh_from_db()
    assert schedule.last_sent_at == TUESDAY_0730
    assert digest.scorecard_emails_send_due(now=TUESDAY_0730 + timedelta(days=7)).sent == 1


def test_chosen_carriers_and_recipients_who_may_see_nothing(day, tenant, smtp_server):  # noqa: F811
    # Only carrier B: the ops manager gets B; carrier A's user may see none of it; a driver
    # (put there by hand: the API refuses it) may not read reports at all.
    _schedule(tenant, [Role.OPS_MANAGER, Role.CARRIER_USER, Role.DRIVER], carriers=[day.b])
    outcome = digest.scorecard_emails_send_due(now=TUESDAY_0730)
    assert (outcome.sent, outcome.skipped) == (1, 2)
    [message] = smtp_server.messages
    assert message["To"] == tenant.user(Role.OPS_MANAGER).email
    text, _html, _attachment, groups = _parts(message)
    assert "Rival couriers" in text and day.a.name not in text
    assert groups == ["Rival couriers", "Total"]


def test_send_now_from_the_api(day, tenant, smtp_server, api_client_for):  # noqa: F811
    schedule = _schedule(tenant, [Role.OPS_MANAGER], weekday=4, period_days=7)
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    response = client.post(f"/api/v1/scorecard-emails/{schedule.pk}/send-now/")
    assert response.status_code == 200, response.content
    assert response.json() == {"sent": 1, "skipped": 0, "failed": 0}
    [message] = smtp_server.messages
    assert message["To"] == tenant.user(Role.OPS_MANAGER).email
    schedule.refresh_from_db()
    assert schedule.last_sent_at is not None


def test_the_command_sends_due_or_all_now(day, tenant, other_tenant, smtp_server):  # noqa: F811
    # Sent a moment ago: not due again this week (the command runs at the real time).
    _schedule(tenant, [Role.OPS_MANAGER], last_sent_at=timezone.now())
    out = io.StringIO()
    call_command("send_scorecard_emails", "--org", tenant.organization.slug, stdout=out)
    assert "0 sent" in out.getvalue() and smtp_server.messages == []
    out = io.StringIO()
    call_command("send_scorecard_emails", "--now", "--org", "acme", stdout=out)
    assert "1 scheduled e-mail(s): 1 sent" in out.getvalue()
    assert len(smtp_server.messages) == 1


def test_an_unreachable_mail_server_releases_the_claim(day, tenant, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.EMAIL_TIMEOUT = 2
    schedule = _schedule(tenant, [Role.OPS_MANAGER])
    outcome = digest.scorecard_emails_send_due(now=TUESDAY_0730)
    assert (outcome.sent, outcome.failed) == (0, 1)
    schedule.refresh_from_db()
    assert schedule.last_sent_at is None  # the next run tries again
    with pytest.raises(CommandError, match="could not be sent"):
        call_command("send_scorecard_emails", "--now", stdout=io.StringIO())


def test_the_admin_action_sends_now(day, tenant, smtp_server, client):  # noqa: F811
    schedule = _schedule(tenant, [Role.OPS_MANAGER])
    client.force_login(tenant.user(Role.OWNER))
    response = client.post(
        "/admin/sla/scorecardemail/",
        {"action": "send_now", "_selected_action": [schedule.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert len(smtp_server.messages) == 1
    assert b"1 e-mail(s) sent" in response.content


def test_trends_are_said_in_words():
    on_time = METRICS["on_time_pct"]
    worse = MetricValue(key="on_time_pct", value=91.2, previous=93.0, delta=-1.8)
    assert digest.trend_text(worse, on_time) == "down 1.8 pts, worse"
    late = METRICS["lateness_p90_min"]
    better = MetricValue(key="lateness_p90_min", value=12.0, previous=20.0, delta=-8.0)
    assert digest.trend_text(better, late) == "down 8.0 min, better"
    volume = MetricValue(key="deliveries", value=120.0, previous=100.0, delta=20.0)
    assert digest.trend_text(volume, METRICS["deliveries"]) == "up 20"
    assert digest.trend_text(MetricValue(key="x", value=None), on_time) == ""
    assert digest.format_value(None, "pct") == "—"
    assert digest.format_value(4.567, "stars") == "4.57"


def test_the_admin_form_offers_only_our_members_and_carriers(tenant, other_tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    page = client.get("/admin/sla/scorecardemail/add/")
    assert page.status_code == 200
    recipients = page.context["adminform"].form.fields["recipients"].queryset
    carriers = page.context["adminform"].form.fields["carriers"].queryset
    with organization_scope(tenant.organization):
        assert {m.organization_id for m in recipients} == {tenant.organization.pk}
        assert set(carriers) == {tenant.carrier}
