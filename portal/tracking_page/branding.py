"""The organization's colours, made readable (WCAG 2.1 AA: 4.5:1 for text).

An organization picks any brand colour; the page must stay legible whatever it is. Buttons
use the brand colour with white or near-black text, whichever contrasts more (always at least
4.5:1); brand-coloured text on the white page is darkened until it reaches 4.5:1.
"""

from __future__ import annotations

AA_TEXT = 4.5
WHITE = "#ffffff"
INK = "#111111"
FALLBACK = "#1f6feb"


def _channels(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def luminance(color: str) -> float:
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _darken(color: str, factor: float) -> str:
    return "#" + "".join(f"{int(c * factor):02x}" for c in _channels(color))


def readable_on_white(color: str) -> str:
    """`color`, darkened in small steps until it reads as text on white."""
    factor = 1.0
    candidate = color
    while contrast(candidate, WHITE) < AA_TEXT and factor > 0:
        factor -= 0.05
        candidate = _darken(color, factor)
    return candidate


def brand_colors(primary: str | None) -> dict:
    """CSS custom properties of the page: `brand` (button background), `on_brand` (its text),
    `brand_text` (brand-coloured text and focus rings on white)."""
    primary = (primary or FALLBACK).lower()
    if len(primary) != 7 or not primary.startswith("#"):
        primary = FALLBACK
    on_brand = WHITE if contrast(primary, WHITE) >= contrast(primary, INK) else INK
    return {"brand": primary, "on_brand": on_brand, "brand_text": readable_on_white(primary)}
