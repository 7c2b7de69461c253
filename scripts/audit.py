"""Known vulnerabilities in the locked dependencies: `make audit` (docs/SECURITY.md).

See the "Supply chain" section there for why the outcomes are told apart.

Audits requirements/dev.txt (runtime + dev, a superset of the image's runtime lock) with
pip-audit against PyPI's vulnerability data, and package-lock.json with `npm audit`.

Three outcomes, three exit codes, because "vulnerable" and "could not ask" need different
answers (CI fails on the first and only warns on the second, see .ci/run):
    0  every dependency was checked, none has a known vulnerability
    1  at least one locked version has a known vulnerability: upgrade it, `make lock`
    3  some dependency could not be checked (service unreachable or refusing): NOT a pass
Anything else (2: pip-audit missing, lock unreadable) is a broken setup.
AUDIT_ALLOW_UNCHECKED=1 (set by CI) turns 3 into 0, after the warning: a test run must not
depend on an outside service being up.

pip-audit alone cannot tell these apart: when PyPI answers 404 for every release (a proxy
that blocks the per-version JSON API does exactly that) it skips every package, prints
"No known vulnerabilities found" and exits 0. So this script reads its JSON report.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_LOCK = ROOT / "requirements" / "dev.txt"
NPM_LOCK = ROOT / "package-lock.json"

CLEAN, VULNERABLE, BROKEN, UNCHECKED = 0, 1, 2, 3
# How network trouble reads in pip-audit's (requests') and npm's errors.
NETWORK_SIGNS = (
    "ConnectionError",
    "Could not connect",
    "ServiceError",
    "Max retries",
    "NameResolution",
    "Temporary failure in name resolution",
    "timed out",
    "ProxyError",
    "ENOTFOUND",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "audit endpoint returned an error",
)


def say(line: str = "") -> None:
    print(f"[audit] {line}" if line else "", flush=True)


def looks_like_network_trouble(text: str) -> bool:
    return any(sign in text for sign in NETWORK_SIGNS)


def audit_python() -> int:
    if not PYTHON_LOCK.exists():
        say(f"{PYTHON_LOCK.relative_to(ROOT)} is missing: run `make lock`")
        return BROKEN
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "pip-audit.json"
        # --disable-pip: audit the pinned versions as written, without installing them into
        # a throw-away virtualenv (the lock is complete and hashed, nothing to resolve).
        command = [
            sys.executable, "-m", "pip_audit",
            "--requirement", str(PYTHON_LOCK),
            "--require-hashes", "--disable-pip",
            "--vulnerability-service", "pypi",
            "--format", "json", "--output", str(report_path),
            "--progress-spinner", "off",
        ]  # fmt: skip
        finished = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if not report_path.exists() or not report_path.read_text().strip():
            say(f"pip-audit wrote no report (exit {finished.returncode}):")
            print(finished.stderr.strip()[-2000:], file=sys.stderr)
            return UNCHECKED if looks_like_network_trouble(finished.stderr) else BROKEN
        report = json.loads(report_path.read_text())
    return judge_python_report(report)


def judge_python_report(report: dict) -> int:
    dependencies = report.get("dependencies", [])
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix released"
            say(f"VULNERABLE {dep['name']}=={dep['version']}: {vuln['id']} (fixed in: {fixed})")
    checked = len(dependencies) - len(skipped)
    say(f"python: {checked} of {len(dependencies)} locked packages checked against PyPI")
    if skipped:
        say(f"python: {len(skipped)} could NOT be checked, e.g. {skipped[0]['skip_reason']}")
    if vulnerable:
        return VULNERABLE
    return UNCHECKED if skipped or not dependencies else CLEAN


def audit_node() -> int:
    if not NPM_LOCK.exists():
        return CLEAN
    npm = shutil.which("npm")
    if npm is None:
        say("npm not found: package-lock.json could NOT be checked")
        return UNCHECKED
    # Not --omit=dev: every package in package.json is a devDependency, yet @zxing/library is
    # copied into static/vendor/ and served to the drivers' phones; --omit=dev would check nothing.
    finished = subprocess.run(  # noqa: S603
        [npm, "audit", "--json"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(finished.stdout or "{}")
    except json.JSONDecodeError:
        report = {}
    counts = report.get("metadata", {}).get("vulnerabilities")
    if counts is None:
        detail = report.get("message") or finished.stderr.strip()[-500:]
        say(f"node: npm audit could NOT check package-lock.json: {detail}")
        return UNCHECKED if looks_like_network_trouble(finished.stderr + detail) else BROKEN
    for name, entry in sorted(report.get("vulnerabilities", {}).items()):
        say(f"VULNERABLE {name} ({entry.get('severity')}): range {entry.get('range')}")
    say(f"node: {counts.get('total', 0)} known vulnerabilities in package-lock.json")
    return VULNERABLE if counts.get("total", 0) else CLEAN


def combine(outcomes: list[int]) -> int:
    # A broken setup hides everything else; a vulnerability outranks "could not check".
    for outcome in (BROKEN, VULNERABLE, UNCHECKED):
        if outcome in outcomes:
            return outcome
    return CLEAN


def main() -> int:
    outcome = combine([audit_python(), audit_node()])
    if outcome == UNCHECKED:
        banner = "!" * 78
        say(banner)
        say("NOT AUDITED: a vulnerability service did not answer; this is not a pass.")
        say("Run `make audit` again where https://pypi.org/pypi/<name>/<version>/json and")
        say("the npm registry's audit endpoint are reachable.")
        say(banner)
        if os.environ.get("AUDIT_ALLOW_UNCHECKED") == "1":
            say("AUDIT_ALLOW_UNCHECKED=1: exiting 0 anyway")
            return CLEAN
    elif outcome == CLEAN:
        say("no known vulnerabilities")
    return outcome


if __name__ == "__main__":
    sys.exit(main())
