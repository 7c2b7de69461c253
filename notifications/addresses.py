"""Recipient addresses, validated and normalized once: phone numbers to E.164 (the
`phonenumbers` library, Google's libphonenumber), e-mail addresses by Django's validator with
the domain lower-cased. Opt-outs, deduplication and rate limits key on the normalized form, so
"+56 9 1234 5678" and "091234 5678" are one recipient."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


class InvalidAddress(ValueError):
    """The address cannot be used; the message says why (shown in logs and API errors)."""


def normalize_phone(raw: str, *, region: str = "") -> str:
    """`raw` as E.164 ("+56912345678"). A number without a country code is read in `region`
    (ISO 3166-1 alpha-2, e.g. the shipment's country). Raises InvalidAddress."""
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("No phone number.")
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidAddress(
                "Give the number with its country code, e.g. +56 9 6123 4567."
            ) from exc
        raise InvalidAddress("Not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress("Not a valid phone number for its country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """Whether the number can receive SMS (mobile, or a type that may be: fixed-or-mobile)."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def normalize_email(raw: str) -> str:
    """The address with surrounding space removed and the domain lower-cased (the local part
    is case-sensitive by the RFC, so it is kept). Raises InvalidAddress."""
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("No e-mail address.")
    try:
        validate_email(text)
    except ValidationError as exc:
        raise InvalidAddress("Not a valid e-mail address.") from exc
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"
