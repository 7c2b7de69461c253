"""Uploaded images are hostile until re-encoded.

`sanitize_image` reads at most the size limit (plus one byte to know it was exceeded), lets
Pillow identify the format from the *content* (never the file name or the declared type),
refuses anything but JPEG, PNG and WebP, refuses pixel bombs before decoding, applies the EXIF
orientation, bounds the size, and re-encodes into a fresh file: photos as JPEG, signatures as
PNG. The new file carries no EXIF (no GPS, no device serial) and nothing that was appended after
the image (a ZIP or HTML "polyglot" tail is simply not copied).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_SIDE_PX = 2560
JPEG_QUALITY = 85

# Pillow's own bomb guard: a warning above the limit, an error above twice the limit. We check
# the dimensions ourselves too (before decoding) so the limit is exactly the setting.
Image.MAX_IMAGE_PIXELS = settings.POD_MAX_IMAGE_PIXELS


class ImageRejected(ValueError):
    pass


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str


def sanitize_image(upload, *, kind: str) -> CleanImage:
    """`kind` is "photo" (→ JPEG) or "signature" (→ PNG)."""
    limit = settings.POD_MAX_IMAGE_BYTES
    upload.seek(0)
    raw = upload.read(limit + 1)
    if len(raw) > limit:
        raise ImageRejected(f"The image is larger than {limit // (1024 * 1024)} MB.")
    if not raw:
        raise ImageRejected("The file is empty.")
    image = _decode(raw)
    image = ImageOps.exif_transpose(image)
    image.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
    out = BytesIO()
    if kind == "signature":
        if image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA")
        image.save(out, format="PNG", optimize=True)
        content_type, extension = "image/png", "png"
    else:
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        content_type, extension = "image/jpeg", "jpg"
    data = out.getvalue()
    return CleanImage(
        data=data,
        content_type=content_type,
        extension=extension,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _decode(raw: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(BytesIO(raw))
            if probe.format not in ALLOWED_FORMATS:
                raise ImageRejected(
                    f"Unsupported image type {probe.format}: send JPEG, PNG or WebP."
                )
            if probe.width * probe.height > settings.POD_MAX_IMAGE_PIXELS:
                raise ImageRejected(
                    f"The image has too many pixels ({probe.width}×{probe.height})."
                )
            probe.verify()  # structure and checksums, without decoding the pixels
            image = Image.open(BytesIO(raw))
            image.load()
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("The image has too many pixels.") from exc
        except UnidentifiedImageError as exc:
            raise ImageRejected("Not an image (JPEG, PNG or WebP expected).") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRejected(f"The image is damaged or truncated ({exc}).") from exc
    return image
