"""The reports API, included under /api/v1/ by control_tower/api/urls.py (docs/REPORTS_API.md)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from carriers.sla.api import eta_accuracy, views

router = DefaultRouter()
router.include_root_view = False
router.register("scorecard-emails", views.ScorecardEmailViewSet, basename="scorecard-email")

urlpatterns = [
    path("reports/scorecard/", views.ScorecardView.as_view(), name="reports-scorecard"),
    path("reports/trend/", views.TrendView.as_view(), name="reports-trend"),
    path(
        "reports/failure-reasons/",
        views.FailureReasonsView.as_view(),
        name="reports-failure-reasons",
    ),
    path("reports/exceptions/", views.ExceptionsView.as_view(), name="reports-exceptions"),
    path("reports/lateness/", views.LatenessView.as_view(), name="reports-lateness"),
    path("reports/drilldown/", views.DrilldownView.as_view(), name="reports-drilldown"),
    path(
        "reports/planning-history/",
        views.PlanningHistoryView.as_view(),
        name="reports-planning-history",
    ),
    path(
        "reports/eta-accuracy/",
        eta_accuracy.EtaAccuracyView.as_view(),
        name="reports-eta-accuracy",
    ),
    path("reports/recompute/", views.RecomputeView.as_view(), name="reports-recompute"),
    path("", include(router.urls)),
]
