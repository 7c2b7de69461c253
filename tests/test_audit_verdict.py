"""`make audit`'s verdict on a pip-audit report (scripts/audit.py): no network, reports as written.

The case that matters most is the first: pip-audit answers "No known vulnerabilities found"
and exits 0 when PyPI could not be asked about a single package. That must not read as a pass.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit.py"
_spec = importlib.util.spec_from_file_location("dependency_audit", SCRIPT)
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

NOT_FOUND = "Dependency not found on PyPI and could not be audited: django (5.2.20)"


def test_a_report_where_pypi_answered_nothing_is_not_a_pass():
    report = {"dependencies": [{"name": "django", "skip_reason": NOT_FOUND}], "fixes": []}
    assert audit.judge_python_report(report) == audit.UNCHECKED


def test_a_known_vulnerability_fails_even_when_other_packages_went_unchecked():
    report = {
        "dependencies": [
            {"name": "django", "skip_reason": NOT_FOUND},
            {
                "name": "requests",
                "version": "2.31.0",
                "vulns": [{"id": "GHSA-9wx4-h78v-vm56", "fix_versions": ["2.32.0"]}],
            },
        ]
    }
    assert audit.judge_python_report(report) == audit.VULNERABLE


def test_every_package_checked_and_none_vulnerable_is_clean():
    report = {"dependencies": [{"name": "django", "version": "5.2.20", "vulns": []}]}
    assert audit.judge_python_report(report) == audit.CLEAN


def test_an_empty_report_checked_nothing():
    assert audit.judge_python_report({"dependencies": []}) == audit.UNCHECKED


def test_a_broken_setup_outranks_a_vulnerability_which_outranks_unchecked():
    assert audit.combine([audit.CLEAN, audit.UNCHECKED]) == audit.UNCHECKED
    assert audit.combine([audit.UNCHECKED, audit.VULNERABLE]) == audit.VULNERABLE
    assert audit.combine([audit.VULNERABLE, audit.BROKEN]) == audit.BROKEN
    assert audit.combine([audit.CLEAN, audit.CLEAN]) == audit.CLEAN


def test_network_trouble_is_told_from_other_failures():
    assert audit.looks_like_network_trouble("ConnectionError: Could not connect to PyPI's feed")
    assert audit.looks_like_network_trouble("npm error audit endpoint returned an error")
    assert not audit.looks_like_network_trouble("Invalid requirement: 'django=='")


def test_ci_lets_an_unchecked_audit_pass_but_never_a_vulnerable_one(monkeypatch, capsys):
    # .ci/run sets AUDIT_ALLOW_UNCHECKED=1: a service being down must not fail the job,
    # a known vulnerability must.
    monkeypatch.setenv("AUDIT_ALLOW_UNCHECKED", "1")
    monkeypatch.setattr(audit, "audit_node", lambda: audit.CLEAN)
    monkeypatch.setattr(audit, "audit_python", lambda: audit.UNCHECKED)
    assert audit.main() == audit.CLEAN
    assert "NOT AUDITED" in capsys.readouterr().out
    monkeypatch.setattr(audit, "audit_python", lambda: audit.VULNERABLE)
    assert audit.main() == audit.VULNERABLE
    monkeypatch.delenv("AUDIT_ALLOW_UNCHECKED")
    monkeypatch.setattr(audit, "audit_python", lambda: audit.UNCHECKED)
    assert audit.main() == audit.UNCHECKED
