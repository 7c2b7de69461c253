"""Portal pages: the dispatcher console and the customer's tracking page."""

from django.urls import include, path

from portal import views
from portal.tracking_page import views as tracking

urlpatterns = [
    path("console/", views.console, name="console"),
    # The ops manager's SLA scorecards, drill-downs and comparisons (docs/REPORTS.md).
    path("reports/", include("portal.reports.urls")),
    # The customer tracking page (docs/TRACKING_PAGE.md). No trailing slash: the URL goes out
    # by SMS, every character counts.
    path("t/", tracking.tracking_lookup, name="tracking-lookup"),
    path("track/<slug:slug>/", tracking.tracking_lookup, name="tracking-lookup-org"),
    path("t/<str:token>", tracking.tracking_page, name="tracking-page"),
    path("t/<str:token>/state", tracking.tracking_state_json, name="tracking-state"),
    path("t/<str:token>/<str:action>", tracking.tracking_action, name="tracking-action"),
]
