from django.urls import path

from exceptions.incident_views import IncidentView

urlpatterns = [path("", IncidentView.as_view(), name="incidents")]
