from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ControlTowerConfig(AppConfig):
    default = True
    name = "control_tower"
    verbose_name = "Organizations and access"


class ControlTowerAdminConfig(admin_apps.AdminConfig):
    """Replaces django.contrib.admin's site with one organization admins can use."""

    default = False
    default_site = "control_tower.admin_site.ControlTowerAdminSite"
