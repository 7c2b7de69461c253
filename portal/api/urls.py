"""Console API (issue 6): the live map's snapshot and route, stop details, search, streets and
the reassign action. Included by control_tower/api/urls.py before the router, so
`stops/<id>/reassign/` is matched here."""

from django.urls import path  # noqa: F401

urlpatterns: list = [
    # realtime helper: console/snapshot/, console/routes/<id>/
    # actions helper: console/stops/<id>/, console/search/, console/streets/, stops/<id>/reassign/
]
