"""/reports/: the scorecard, the drill-down behind any number, two periods side by side, the
ETA accuracy."""

from django.urls import path

from portal.reports import views

urlpatterns = [
    path("", views.scorecard, name="reports"),
    path("drilldown/", views.drilldown, name="reports-drilldown"),
    path("compare/", views.compare, name="reports-compare"),
    path("eta/", views.eta_accuracy, name="reports-eta-accuracy"),
]
