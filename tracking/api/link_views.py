"""Tracking links and what recipients did, under a shipment (`ShipmentViewSet`):

- `GET  /shipments/{id}/tracking-links/`: the shipment's links (never a token: only hashes
  exist);
- `POST /shipments/{id}/tracking-links/`: issue a new link; the answer carries its URL, once;
- `DELETE /shipments/{id}/tracking-links/{link_id}/`: revoke one;
- `GET  /shipments/{id}/customer-actions/`: the recipient's actions (instructions, reschedule,
  not home, rating), newest first.

Reads need shipments read, the others shipments write (tenancy/roles.py); `get_object()`
applies the organization and carrier narrowing. docs/TRACKING_LINKS.md.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from control_tower.models import Language
from tracking.errors import NotFound
from tracking.models import CustomerAction, DeliveryRating, LinkSource, TrackingLink
from tracking.services.tracking_links import link_issue, link_revoke, tracking_url


class TrackingLinkSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="active, expired (the shipment's final status was long enough ago) or revoked."
    )

    class Meta:
        model = TrackingLink
        fields = [
            "id",
            "status",
            "source",
            "language",
            "created_at",
            "created_by",
            "expires_at",
            "revoked_at",
            "revoked_by",
            "last_opened_at",
        ]
        read_only_fields = fields

    def get_status(self, link) -> str:
        if link.revoked_at is not None:
            return "revoked"
        return "active" if link.is_usable() else "expired"


class TrackingLinkIssuedSerializer(TrackingLinkSerializer):
    url = serializers.CharField(
        help_text="The link to give the recipient. Shown once: only its hash is stored."
    )

    class Meta(TrackingLinkSerializer.Meta):
        fields = [*TrackingLinkSerializer.Meta.fields, "url"]
        read_only_fields = fields


class TrackingLinkIssueSerializer(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=Language.choices,
        required=False,
        allow_blank=True,
        help_text="The page's language for this recipient (empty: their browser's).",
    )


class CustomerActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerAction
        fields = ["id", "kind", "occurred_at", "link", "details"]
        read_only_fields = fields


class DeliveryRatingSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryRating
        fields = ["stars", "comment", "carrier", "driver", "delivered_at", "created_at"]
        read_only_fields = fields


class TrackingLinksMixin:
    """For `ShipmentViewSet`."""

    @extend_schema(
        methods=["get"],
        operation_id="shipment_tracking_links_list",
        description="The shipment's tracking links, newest first (never a token).",
        request=None,
        responses=TrackingLinkSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        operation_id="shipment_tracking_links_issue",
        description="Issue a new tracking link; its `url` is in this answer only. 409 "
        "`tracking_ended` when the shipment's tracking has ended. Earlier links keep working "
        "until revoked.",
        request=TrackingLinkIssueSerializer,
        responses={201: TrackingLinkIssuedSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="tracking-links",
        pagination_class=None,
        filter_backends=[],
    )
    def tracking_links(self, request, pk=None):
        """GET: the shipment's tracking links, newest first. POST: issue a new one (409
        `tracking_ended` when the shipment's tracking has ended); its `url` is shown once.
        Earlier links keep working until revoked."""
        shipment = self.get_object()
        if request.method == "GET":
            links = TrackingLink.objects.filter(shipment_id=shipment.pk).order_by(
                "-created_at", "-id"
            )
            return Response(TrackingLinkSerializer(links, many=True).data)
        body = TrackingLinkIssueSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        link, raw = link_issue(
            shipment,
            actor=self.actor,
            source=LinkSource.REISSUED,
            language=body.validated_data.get("language", ""),
        )
        data = TrackingLinkSerializer(link).data
        data["url"] = tracking_url(self.actor.organization, raw, request=request)
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="shipment_tracking_link_revoke",
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("link_id", int, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"tracking-links/(?P<link_id>\d+)",
        pagination_class=None,
        filter_backends=[],
    )
    def tracking_link_revoke(self, request, pk=None, link_id=None):
        """Revoke one link: it stops working at once (revoking twice is fine)."""
        shipment = self.get_object()
        link = TrackingLink.objects.filter(shipment_id=shipment.pk, pk=link_id).first()
        if link is None:
            raise NotFound("No such tracking link.")
        link_revoke(link, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=CustomerActionSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        url_path="customer-actions",
        pagination_class=None,
        filter_backends=[],
    )
    def customer_actions(self, request, pk=None):
        """What the recipient did through their links, newest first (the audit trail)."""
        shipment = self.get_object()
        rows = CustomerAction.objects.filter(shipment_id=shipment.pk).order_by(
            "-occurred_at", "-id"
        )
        return Response(CustomerActionSerializer(rows, many=True).data)
