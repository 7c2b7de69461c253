"""The fake camera works: a Chromium launched by `camera_browser_for` films the barcode the test
generated, and the vendored ZXing, with the settings the driver app copies (see the docstring of
tests/e2e/fake_camera.py), reads it back from `getUserMedia`, for Code 128 and for QR, on a page
whose Content-Security-Policy is as strict as the tracking page's."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.fake_camera import barcode_image, write_y4m

ZXING_URL = "/static/vendor/zxing/zxing-library-0.23.0.min.js"
PAGE_PATH = "/__camera_test__/"
SCRIPT_PATH = "/__camera_test__/scanner.js"

# As strict as the tracking page's policy (portal/tracking_page/headers.py): if ZXing and the
# camera work under it, the driver app's own policy need not loosen anything for the scanner.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)

SCANNER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camera test</title>
<script src="{ZXING_URL}"></script><script src="{SCRIPT_PATH}" defer></script></head>
<body><video id="camera"></video></body></html>"""

# The scanner of the driver app, reduced to what decodes: the hints, the reader, the callback.
SCANNER_SCRIPT = """
window.scanned = null;
window.scanErrors = [];
const hints = new Map();
hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS,
          [ZXing.BarcodeFormat.CODE_128, ZXing.BarcodeFormat.QR_CODE]);
hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
const reader = new ZXing.BrowserMultiFormatReader(hints, 200);
const video = document.getElementById("camera");
reader.decodeFromVideoDevice(null, video, (result, error) => {
  if (result) {
    window.scanned = {text: result.getText(),
                      format: ZXing.BarcodeFormat[result.getBarcodeFormat()],
                      size: [video.videoWidth, video.videoHeight]};
    reader.reset();
  } else if (error && !(error instanceof ZXing.NotFoundException)) {
    window.scanErrors.push(String(error));
  }
}).catch((error) => window.scanErrors.push(String(error)));
"""


def serve_scanner(route):
    if route.request.url.endswith(SCRIPT_PATH):
        route.fulfill(content_type="text/javascript", body=SCANNER_SCRIPT)
    else:
        route.fulfill(
            content_type="text/html",
            body=SCANNER_PAGE,
            headers={"Content-Security-Policy": STRICT_CSP},
        )


def scan_with_fake_camera(camera_browser_for, live_server, text: str, symbology: str) -> dict:
    chromium = camera_browser_for(text, symbology)
    context = chromium.new_context()
    # getUserMedia needs a secure context: http://127.0.0.1 is one, so the page is served on the
    # live server's origin (the test answers for it; ZXing itself comes from the static files).
    context.route(f"{live_server.url}/__camera_test__/**", serve_scanner)
    page = context.new_page()
    csp_violations = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text and csp_violations.append(message.text)
        ),
    )
    page.goto(f"{live_server.url}{PAGE_PATH}")
    page.wait_for_function(
        "() => window.scanned !== null || window.scanErrors.length > 0", timeout=TIMEOUT_MS
    )
    scanned, errors = page.evaluate("() => [window.scanned, window.scanErrors]")
    assert errors == []
    assert csp_violations == []
    context.close()
    return scanned


@pytest.mark.parametrize(
    ("text", "symbology", "zxing_format"),
    [
        ("CT000077", "code128", "CODE_128"),
        ("CQX202612060023", "code128", "CODE_128"),  # a demo parcel (demo_driver_route)
        ("CT000077", "qr", "QR_CODE"),
        ("https://demo.example/t/AbC123", "qr", "QR_CODE"),
    ],
)
def test_zxing_reads_the_generated_barcode_from_the_fake_camera(
    camera_browser_for, live_server, text, symbology, zxing_format
):
    scanned = scan_with_fake_camera(camera_browser_for, live_server, text, symbology)

    # The text proves the frames came from the generated video (Chromium's default fake camera
    # films a clock); the size is what the driver app's scanner will get.
    assert scanned == {"text": text, "format": zxing_format, "size": [640, 480]}


def test_barcode_image_keeps_the_quiet_zone_white(tmp_path):
    image = barcode_image("CT000077", symbology="code128").convert("L")
    width, height = image.size
    dark = [x for x in range(width) if image.getpixel((x, height // 2)) < 128]
    # 10 modules of 3 px each side at least, and the bars large enough for a phone.
    assert dark[0] >= 30 and width - 1 - dark[-1] >= 30
    assert dark[-1] - dark[0] > width // 2

    video = write_y4m(tmp_path / "frame.y4m", image.convert("RGB"), frames=3, fps=10)
    header, _, body = video.read_bytes().partition(b"\n")
    assert header == b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg"
    frame_size = len(b"FRAME\n") + 640 * 480 * 3 // 2
    assert len(body) == 3 * frame_size
    assert body.startswith(b"FRAME\n")
