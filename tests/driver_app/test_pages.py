"""The driver app's pages: the shell, its service worker and its manifest (driver_app/pages.py).
What they do in a browser is tested in tests/e2e/test_driver_app.py."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders

from driver_app.pages import OFFLINE_FILES


@pytest.mark.parametrize("url", ["/driver/", "/driver/sw.js", "/driver/manifest.webmanifest"])
def test_pages_answer_without_a_session_under_a_strict_csp(client, url):
    response = client.get(url)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "manifest-src 'self'" in policy
    assert response["Cache-Control"] == "no-cache"


def test_shell_has_no_inline_script_and_renders_its_config_as_json(client):
    body = client.get("/driver/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", body, flags=re.S)
    for attributes, content in scripts:
        assert 'src="' in attributes or 'type="application/json"' in attributes, attributes
        if "src=" in attributes:
            assert not content.strip()
    config = json.loads(re.search(r'id="driver-config"[^>]*>(.*?)</script>', body).group(1))
    assert config["api"]["today"] == "/api/v1/driver/today/"
    assert config["api"]["pod"] == "/api/v1/ingest/pod"
    assert 'rel="manifest" href="/driver/manifest.webmanifest"' in body


def test_shell_speaks_spanish_from_accept_language_or_lang(client):
    spanish = client.get("/driver/", HTTP_ACCEPT_LANGUAGE="es-CL,es;q=0.9").content.decode()
    assert '<html lang="es">' in spanish
    assert "Iniciar sesión" in spanish
    catalog = json.loads(re.search(r'id="driver-catalog"[^>]*>(.*?)</script>', spanish).group(1))
    assert catalog["queue_waiting"]["other"] == "%(n)s esperando envío"
    # Counted phrases carry both forms; the page picks one with the language's plural rules.
    assert catalog["queue_attention"] == {
        "one": "%(n)s requiere atención",
        "other": "%(n)s requieren atención",
        "count": "n",
    }
    assert catalog["shipment_out_for_delivery"] == "En reparto"
    assert all(value for value in catalog.values())
    english = client.get("/driver/?lang=en", HTTP_ACCEPT_LANGUAGE="es-CL").content.decode()
    assert '<html lang="en">' in english and "Sign in" in english


def test_service_worker_is_javascript_scoped_to_the_app_and_lists_existing_files(client):
    response = client.get("/driver/sw.js")
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/driver/"
    body = response.content.decode()
    files = json.loads(re.search(r"const FILES = (\[.*?\]);", body).group(1))
    assert "/static/vendor/zxing/zxing-library-0.23.0.min.js" in files
    assert "/static/leaflet/leaflet.js" in files
    for name in OFFLINE_FILES:
        assert finders.find(name), name
    assert 'if (request.method !== "GET") return;' in body


def test_manifest_makes_the_app_installable(client):
    response = client.get("/driver/manifest.webmanifest")
    assert response["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["start_url"] == "/driver/"
    assert manifest["display"] == "standalone"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200
