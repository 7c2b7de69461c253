from django.urls import path

from driver_app.api import SessionView, TodayView

urlpatterns = [
    path("session/", SessionView.as_view(), name="driver-session"),
    path("today/", TodayView.as_view(), name="driver-today"),
]
