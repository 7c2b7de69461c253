"""The weekly scorecard e-mails in the admin, with a "send now" action. (The SLA roll-ups'
own admin, if any, lives in admin_facts.py and is imported from here.)"""

from __future__ import annotations

import contextlib

from django.contrib import admin, messages

from carriers.sla.digest import scorecard_email_send
from carriers.sla.models import ScorecardEmail
from control_tower.admin_site import TenantAdmin

with contextlib.suppress(ImportError):  # the SLA roll-ups' admin, when there is one
    from carriers.sla import admin_facts  # noqa: F401


@admin.register(ScorecardEmail)
class ScorecardEmailAdmin(TenantAdmin):
    list_display = ["name", "weekday", "hour", "period_days", "is_active", "last_sent_at"]
    list_filter = ["is_active", "weekday"]
    search_fields = ["name"]
    filter_horizontal = ["recipients", "carriers"]
    readonly_fields = ["last_sent_at", "created_at"]
    actions = ["send_now"]

    @admin.action(description="Send the selected scorecard e-mails now")
    def send_now(self, request, queryset):
        sent = skipped = failed = 0
        for schedule in queryset.select_related("organization"):
            outcome = scorecard_email_send(schedule=schedule)
            sent, skipped, failed = (
                sent + outcome.sent,
                skipped + outcome.skipped,
                failed + outcome.failed,
            )
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(
            request,
            f"{sent} e-mail(s) sent, {skipped} recipient(s) skipped, {failed} failed.",
            level,
        )
