"""A fake phone camera for browser tests: Chromium films a barcode the test generates.

Chromium's fake capture device (`--use-fake-device-for-media-stream`) plays a YUV4MPEG2 file
(`--use-file-for-fake-video-capture=<file.y4m>`) to every `getUserMedia` call, in a loop, and
`--use-fake-ui-for-media-stream` grants the camera permission without a prompt. The video file is
a launch flag, so each barcode needs its own Chromium: the fixture `camera_browser_for(text,
symbology)` of tests/e2e/conftest.py makes one per call.

What decodes (proved by tests/e2e/test_fake_camera.py, ZXing `@zxing/library` 0.23.0 UMD, global
`ZXing`, Chromium 156 headless, page on http://127.0.0.1:<port>, a secure context):

    const hints = new Map();
    hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS,
              [ZXing.BarcodeFormat.CODE_128, ZXing.BarcodeFormat.QR_CODE]);
    hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
    const reader = new ZXing.BrowserMultiFormatReader(hints, 200);  // ms between attempts
    reader.decodeFromVideoDevice(null, videoElement, (result, error) => {
      if (result) { reader.reset(); use(result.getText(), result.getBarcodeFormat()); }
      // `error` is a ZXing.NotFoundException on every frame without a barcode: ignore it.
    }).catch(showCameraError);  // a Promise: rejects when there is no camera or no permission
    // leaving the scanner: reader.reset() stops the camera tracks.

- `videoElement` is a `<video>` in the page; ZXing sets its `srcObject` and plays it. `null` as
  device id = the default camera (`facingMode: "environment"`, the back camera on a phone).
- It works under a strict Content-Security-Policy (`default-src 'none'; script-src 'self'`, no
  `media-src`, no `worker-src`, no `unsafe-eval`): ZXing needs no eval, and a camera stream in
  `srcObject` is no fetch. The scanner script must be a file of the site, not inline.
- The frame: 640×480 (1280×720 works the same), black bars on white, Code 128 at 3 px a
  module with a 10-module quiet zone each side, QR at 6 px a module with a 4-module quiet zone.
  Both are read about 0.4 s after the page starts the camera, with or without the hints: the
  hints limit the readers tried (less work per frame on a phone) and TRY_HARDER helps a real,
  blurry camera. What does *not* decode, hints or not: a Code 128 of about 1 px a module
  (the same barcode shrunk to a third of the frame); keep `barcode_image`'s sizes.
- `reader.decodeOnceFromVideoDevice(undefined, "camera")` (element id; a Promise of the first
  result, then `reader.reset()`) works as well.
- Chromium plays the file in a loop, so a 30-frame video is enough for any test length.
"""

from __future__ import annotations

import io
from pathlib import Path

import barcode
import segno
from PIL import Image, ImageDraw

from tests.e2e.conftest import CHROMIUM_ARGS

SYMBOLOGIES = ("code128", "qr")
# Code 128 wants 10 modules of white on each side, QR 4 (ISO/IEC 15417 and 18004).
CODE128_QUIET_MODULES = 10
QR_QUIET_MODULES = 4


def fake_camera_args(video_path: Path) -> list[str]:
    """Chromium flags for a camera that films `video_path` and needs no permission prompt."""
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video_path}",
    ]


def _code128(text: str, max_width: int, bar_height: int) -> Image.Image:
    # python-barcode encodes (code sets, checksum) into a string of modules; we paint the
    # modules ourselves at a whole number of pixels each, because ImageWriter works in mm at a
    # dpi and its rounding makes uneven bars (it even fails below 1 px a module).
    modules = barcode.get("code128", text).build()[0]
    module_px = max_width // (len(modules) + 2 * CODE128_QUIET_MODULES)
    if module_px < 2:
        raise ValueError(f"{text!r} is too long for a {max_width} px wide Code 128")
    quiet = CODE128_QUIET_MODULES * module_px
    image = Image.new("L", (len(modules) * module_px + 2 * quiet, bar_height), 255)
    draw = ImageDraw.Draw(image)
    for index, module in enumerate(modules):
        if module == "1":
            left = quiet + index * module_px
            draw.rectangle([left, 0, left + module_px - 1, bar_height - 1], fill=0)
    return image


def _qr(text: str, max_side: int) -> Image.Image:
    code = segno.make(text, error="m", micro=False)
    side_modules = code.symbol_size(scale=1, border=QR_QUIET_MODULES)[0]
    scale = max_side // side_modules
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=QR_QUIET_MODULES)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def barcode_image(
    text: str, *, symbology: str = "code128", width: int = 640, height: int = 480
) -> Image.Image:
    """A white `width`×`height` frame with one large barcode of `text`, centred, quiet zone
    included. Code 128 uses up to 90 % of the width (3 px a module for 8 characters at 640 px),
    QR up to 75 % of the height."""
    if symbology == "code128":
        symbol = _code128(text, max_width=width * 9 // 10, bar_height=height // 2)
    elif symbology == "qr":
        symbol = _qr(text, max_side=height * 3 // 4)
    else:
        raise ValueError(f"symbology must be one of {SYMBOLOGIES}, not {symbology!r}")
    frame = Image.new("RGB", (width, height), "white")
    frame.paste(symbol, ((width - symbol.width) // 2, (height - symbol.height) // 2))
    return frame


def write_y4m(path: Path, image: Image.Image, *, frames: int = 30, fps: int = 10) -> Path:
    """Write `image` as a YUV4MPEG2 4:2:0 video of `frames` identical frames.

    Pillow's YCbCr is full-range JPEG YCbCr, hence `C420jpeg` (chroma sited between luma
    samples); chroma is averaged over 2×2 blocks, so width and height must be even."""
    width, height = image.size
    if width % 2 or height % 2:
        raise ValueError("a 4:2:0 frame needs an even width and height")
    luma, blue, red = image.convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = b"".join(
        (
            b"FRAME\n",
            luma.tobytes(),
            blue.resize(half, Image.Resampling.BOX).tobytes(),
            red.resize(half, Image.Resampling.BOX).tobytes(),
        )
    )
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii")
    path = Path(path)
    path.write_bytes(header + frame * frames)
    return path


def camera_browser(playwright, video_path: Path):
    """A headless Chromium (the e2e flags) whose only camera films `video_path`."""
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=[*CHROMIUM_ARGS, *fake_camera_args(video_path)],
    )
