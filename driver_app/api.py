"""The driver app's own API: sign a phone in and out, and read the day.

Everything the phone *does* (pings, scans, proofs of delivery, stop events, incidents) goes
through the platform's public endpoints with the device token this sign-in issues; these views
only add what no other client needs.
"""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carriers.models import DeviceKind
from control_tower.api.base import TenantAPIView
from control_tower.errors import NotPermitted, TooManyAttempts
from control_tower.ratelimit import client_ip, rate_limited, window_retry_after
from control_tower.tenancy.roles import Resource
from control_tower.tenancy.scope import organization_scope
from control_tower.web import pick_language
from driver_app.selectors import driver_today
from driver_app.services import driver_sign_in, driver_sign_out
from tracking.ingest.auth import DeviceTokenAuthentication

# Password guessing through the phone sign-in: per address and per e-mail, per quarter hour.
SIGN_IN_LIMIT, SIGN_IN_WINDOW_S = 10, 15 * 60


class SignInSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    install_id = serializers.RegexField(
        r"^[A-Za-z0-9._:-]{8,64}$",
        help_text="An id the app makes once per installation (a UUID): signing in again from "
        "it reuses the same device record.",
        error_messages={"invalid": "8 to 64 letters, digits, dots, dashes or colons."},
    )
    device_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    organization = serializers.SlugField(
        required=False, help_text="Only for people who drive for several organizations."
    )


def session_body(device, *, token: str | None = None) -> dict:
    driver, organization = device.driver, device.organization
    body = {
        "device": {"id": device.pk, "name": device.name},
        "driver": {"id": driver.pk, "name": driver.name},
        "carrier": {"id": device.carrier_id, "name": device.carrier.name},
        "organization": {
            "slug": organization.slug,
            "name": organization.name,
            "time_zone": organization.time_zone,
        },
    }
    if token is not None:
        body = {"token": token, **body}
    return body


SESSION = inline_serializer(
    "DriverSession",
    {
        "device": serializers.DictField(),
        "driver": serializers.DictField(),
        "carrier": serializers.DictField(),
        "organization": serializers.DictField(),
    },
)


class DriverDeviceView(TenantAPIView):
    """Views for a signed-in driver app: a device token of kind `driver_app` with a driver."""

    authentication_classes = [DeviceTokenAuthentication]
    resource = Resource.ROUTES

    def check_permissions(self, request):
        actor = getattr(self, "actor", None)
        if actor is not None:
            device = actor.device
            if device is None or device.kind != DeviceKind.DRIVER_APP or device.driver_id is None:
                raise NotPermitted(
                    "Only a driver app signed in as a driver can do this.",
                    code="not_a_driver_app",
                )
        super().check_permissions(request)


class SessionView(DriverDeviceView):
    # Signing itself out is the phone's own business, like reporting progress.
    resource = Resource.ROUTE_PROGRESS

    def _signing_in(self) -> bool:
        # Signing in is the one call without a token. (No request: the schema generator.)
        request = getattr(self, "request", None)
        return request is not None and request.method == "POST"

    def get_authenticators(self):
        return [] if self._signing_in() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self._signing_in() else super().get_permissions()

    def initial(self, request, *args, **kwargs):
        if self._signing_in():
            return APIView.initial(self, request, *args, **kwargs)
        return super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="driver_sign_in",
        request=SignInSerializer,
        responses={201: SESSION},
        auth=[],
        description="Sign a phone in as a driver: e-mail and password (a driver membership) "
        "give a device token bound to the driver, shown once. Send it as "
        "`Authorization: Device <token>` on every other call.",
    )
    def post(self, request):
        form = SignInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        email = values["email"].strip().lower()
        if rate_limited(
            "driver-sign-in", client_ip(request), limit=SIGN_IN_LIMIT, window_s=SIGN_IN_WINDOW_S
        ) or rate_limited(
            "driver-sign-in-email", email, limit=SIGN_IN_LIMIT, window_s=SIGN_IN_WINDOW_S
        ):
            raise TooManyAttempts(
                "Too many sign-in attempts; wait a few minutes.",
                retry_after_s=window_retry_after(SIGN_IN_WINDOW_S),
            )
        signed_in = driver_sign_in(
            email=email,
            password=values["password"],
            install_id=values["install_id"],
            device_name=values.get("device_name", ""),
            organization_slug=values.get("organization"),
        )
        with organization_scope(signed_in.organization):
            body = session_body(signed_in.device, token=signed_in.token)
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="driver_session", responses=SESSION)
    def get(self, request):
        return Response(session_body(self.actor.device))

    @extend_schema(operation_id="driver_sign_out", request=None, responses={204: None})
    def delete(self, request):
        driver_sign_out(device=self.actor.device)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TodayView(DriverDeviceView):
    @extend_schema(
        operation_id="driver_today",
        responses=inline_serializer(
            "DriverDay",
            {
                "date": serializers.DateField(),
                "generated_at": serializers.DateTimeField(),
                "routes": serializers.ListField(child=serializers.DictField()),
                "choices": serializers.DictField(),
                "pod_policy": serializers.DictField(),
            },
        ),
        description="The signed-in driver's routes of today (organization time zone) with "
        "their stops, parcels and instructions, and the choices the app offers, in the "
        "language of Accept-Language. Never another driver's routes.",
    )
    def get(self, request):
        carrier = self.actor.device.carrier
        policy = {
            "photo_required": carrier.sla_pod_photo_required,
            "signature_required": carrier.sla_pod_signature_required,
        }
        # The app asks in the phone's language (`?lang=` or Accept-Language), like the
        # tracking page (control_tower/web.py): the site has no locale middleware.
        language = pick_language(request, default=self.actor.organization.default_language)
        with translation.override(language):
            body = driver_today(self.actor, carrier_pod_policy=policy)
        return Response(body)
