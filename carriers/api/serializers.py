from rest_framework import serializers

from carriers.models import (
    SLA_POLICY_FIELDS,
    Carrier,
    Device,
    Driver,
    Vehicle,
    validate_required_scans,
)
from control_tower.api.serializers import TenantModelSerializer


class CarrierSerializer(TenantModelSerializer):
    class Meta:
        model = Carrier
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "contact_email",
            "contact_phone",
            "is_active",
            *SLA_POLICY_FIELDS,
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        unique_in_organization = (("code",),)

    def validate_sla_required_scans(self, value):
        if problems := validate_required_scans(list(value)):
            raise serializers.ValidationError(problems)
        return value


class DriverSerializer(TenantModelSerializer):
    class Meta:
        model = Driver
        fields = [
            "id",
            "carrier",
            "user",
            "name",
            "phone",
            "email",
            "external_id",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "user", "created_at"]
        unique_in_organization = (("carrier", "external_id"),)


class VehicleSerializer(TenantModelSerializer):
    class Meta:
        model = Vehicle
        fields = [
            "id",
            "carrier",
            "plate",
            "kind",
            "capacity_parcels",
            "capacity_kg",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        unique_in_organization = (("plate",),)


class DeviceSerializer(TenantModelSerializer):
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "carrier",
            "driver",
            "vehicle",
            "name",
            "kind",
            "external_id",
            "token_prefix",
            "last_seen_at",
            "revoked_at",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "token_prefix", "last_seen_at", "revoked_at", "created_at"]

    def get_is_active(self, device: Device) -> bool:
        return device.revoked_at is None

    def validate(self, attrs):
        attrs = super().validate(attrs)
        carrier = attrs.get("carrier", getattr(self.instance, "carrier", None))
        for name in ("driver", "vehicle"):
            related = attrs.get(name, getattr(self.instance, name, None))
            if related is not None and carrier is not None and related.carrier_id != carrier.pk:
                raise serializers.ValidationError({name: ["Belongs to another carrier."]})
        return attrs


class DeviceWithTokenSerializer(DeviceSerializer):
    token = serializers.CharField(
        read_only=True, help_text="Shown once: configure it in the device now."
    )

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "token"]
