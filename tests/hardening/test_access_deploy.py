"""Finding 4 (issue 18): the production cookie flags and HSTS were not switched on by an HTTPS
setting, and `manage.py check --deploy` did not pass. Now `HTTPS=true` switches them on and the
check passes with the production settings (DEBUG off, a long random key)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code_or_args: list[str], **overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "tower.example.com",
        "PYTHONPATH": str(ROOT),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_https_on():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], HTTPS="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_https():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], HTTPS="false")
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS
    assert "security.W012" in result.stderr  # session cookie not secure


def _settings(**overrides: str) -> dict:
    code = (
        "import json, control_tower.settings as s; print(json.dumps({k: getattr(s, k, None) "
        "for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER']}))"
    )
    result = _run(["-c", code], **overrides)
    assert result.returncode == 0, result.stderr

    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_switches_on_cookie_flags_and_hsts():
    on = _settings(HTTPS="true")
    assert on["SESSION_COOKIE_SECURE"] and on["CSRF_COOKIE_SECURE"] and on["SECURE_SSL_REDIRECT"]
    assert on["SECURE_HSTS_SECONDS"] >= 31536000
    assert on["SECURE_PROXY_SSL_HEADER"] is None  # a client could claim HTTPS without a proxy
    behind = _settings(HTTPS="true", BEHIND_TLS_PROXY="true")
    assert behind["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    off = _settings(HTTPS="false")
    assert not off["SESSION_COOKIE_SECURE"] and not off["CSRF_COOKIE_SECURE"]
    assert off["SECURE_HSTS_SECONDS"] == 0
