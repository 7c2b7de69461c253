"""The driver app's pages under /driver/ (the API it calls lives under /api/v1/)."""

from django.urls import path

from driver_app import pages

urlpatterns = [
    path("", pages.driver_shell, name="driver-app"),
    path("sw.js", pages.service_worker, name="driver-sw"),
    path("manifest.webmanifest", pages.manifest, name="driver-manifest"),
]
