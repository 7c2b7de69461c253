"""What an address line says about the building: the one parser of unit markers.

Chilean addresses name the unit after the street number: ", Depto 402" (departamento) or
"Dpto.", "Dep.", "Block 3", "Torre B" for an apartment block; ", Local 3" or "Of. 12" for a
shop or an office on the street; ", Casa 5" for a house in a condominium. An address without a
marker says nothing: a house, or an apartment nobody wrote down, hence "unknown".
"""

from __future__ import annotations

import re

# A marker counts as a whole word followed by a unit: a number ("Depto 402", "Dpto.51") or
# one letter ("Torre B"), so "Casablanca 12" or "Depósito" are not units. (A street named
# after a marker, "Pasaje Local 5", would read as one: rare enough to accept.)
_UNIT = r"\b\.?\s*(n[°º]\s*)?(\d[\w-]*|[a-z]\b)"
_APARTMENT = re.compile(
    rf"\b(depto|dpto|dep|departamento|apto|apt|block|torre){_UNIT}", re.IGNORECASE
)
_SHOP = re.compile(rf"\b(local|oficina|of){_UNIT}", re.IGNORECASE)
_HOUSE = re.compile(rf"\bcasa{_UNIT}", re.IGNORECASE)


def building_type(address: str) -> str:
    """ "apartment", "shop" or "house" from the unit marker of an address line, "unknown"
    without one (a missing marker is not evidence of a house)."""
    text = address or ""
    if _APARTMENT.search(text):
        return "apartment"
    if _SHOP.search(text):
        return "shop"
    if _HOUSE.search(text):
        return "house"
    return "unknown"
