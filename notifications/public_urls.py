"""Public (unauthenticated) endpoints: provider status callbacks, inbound SMS (STOP),
unsubscribe links, and the development mail viewer. Included at /n/ by control_tower/urls.py."""

from django.urls import include, path

from notifications import public_views

app_name = "notifications"
urlpatterns = [
    # GET: a page with a confirm button; POST: one-click unsubscribe (RFC 8058).
    path("unsubscribe/<str:token>/", public_views.unsubscribe, name="unsubscribe"),
    path("sms/<str:backend>/status/<str:key>/", public_views.sms_status, name="sms_status"),
    path("sms/<str:backend>/inbound/", public_views.sms_inbound, name="sms_inbound"),
    path("dev/mail/", include("notifications.mail_viewer_urls")),
]
