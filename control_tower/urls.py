from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from control_tower import views
from tracking.ingest import pod_files

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/organization/", views.switch_organization, name="switch-organization"),
    path("accounts/invitations/<str:token>/", views.invitation, name="invitation"),
    path("admin/", admin.site.urls),
    # Device protocols (/ingest/osmand/<token>/, /ingest/owntracks/) never reach Django: the
    # ASGI application answers them first (tracking/ingest/fast.py, control_tower/asgi.py).
    path("pod-files/<str:token>/", pod_files.pod_file, name="pod-file"),
    path("", include("portal.urls")),  # /console/
    path("n/", include("notifications.public_urls")),
    path("driver/", include("driver_app.urls")),
    path("api/v1/", include("control_tower.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        csp_replace({"style-src": [SELF, UNSAFE_INLINE]})(
            # Swagger UI injects its own <style> elements (its scripts need no exception).
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
]

if settings.DEBUG:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]

handler404 = "control_tower.views.not_found"
handler500 = "control_tower.views.server_error"
