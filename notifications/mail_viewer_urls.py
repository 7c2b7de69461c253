"""The captured-mail viewer (notifications/mail_viewer.py), included at /n/dev/mail/."""

from django.urls import path

from notifications import mail_viewer

urlpatterns = [
    path("", mail_viewer.mail_list, name="mail_viewer"),
    path("<str:name>/", mail_viewer.mail_detail, name="mail_viewer_message"),
    path("<str:name>/html/", mail_viewer.mail_html, name="mail_viewer_html"),
    path("<str:name>/raw/", mail_viewer.mail_raw, name="mail_viewer_raw"),
]
