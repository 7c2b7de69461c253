"""Portal pages (the dispatcher console; later the customer tracking page and reports)."""

from django.urls import path

from portal import views

urlpatterns = [
    path("console/", views.console, name="console"),
]
