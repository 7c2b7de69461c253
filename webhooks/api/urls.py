"""This app's REST endpoints, included under /api/v1/ by control_tower/api/urls.py."""

urlpatterns: list = []
