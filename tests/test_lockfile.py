"""The hashed lock files hold what pyproject.toml asks for (docs/SECURITY.md, "Supply chain").

Bootstrap installs requirements/dev.txt with `pip install --require-hashes`, the Dockerfile
requirements/runtime.txt, and the project itself with `--no-deps`. A dependency added to
pyproject.toml without `make lock` would therefore be silently missing (or, in CI, fail far
from its cause); a range narrowed without re-locking would leave a version pyproject forbids.
Read from the files only: no network, no pip.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEV_LOCK = ROOT / "requirements" / "dev.txt"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
RELOCK = "pyproject.toml changed without `make lock`"

# A pin starts a line: `name==version \`, then its `--hash=sha256:...` continuation lines.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:\\)?$")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def read_lock(path: Path) -> dict[str, tuple[Version, int]]:
    """{normalised name: (pinned version, number of hashes)} of a pip-compile lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (Version(match[2]), 0)
        elif current and HASH.search(line):
            version, hashes = pins[current]
            pins[current] = (version, hashes + len(HASH.findall(line)))
        elif line and not line.startswith((" ", "#")):
            current = None  # an option line (--index-url ...) or something pip-compile never writes
    return pins


RUNTIME = [Requirement(spec) for spec in PYPROJECT["dependencies"]]
DEV = [Requirement(spec) for spec in PYPROJECT["optional-dependencies"]["dev"]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [(DEV_LOCK, RUNTIME + DEV), (RUNTIME_LOCK, RUNTIME)],
    ids=["dev", "runtime"],
)
def test_every_declared_dependency_is_pinned_within_its_range(lock, requirements):
    pins = read_lock(lock)
    missing = sorted(req.name for req in requirements if canonicalize_name(req.name) not in pins)
    assert not missing, f"{lock.name} lacks {missing}: {RELOCK}"
    outside = {
        req.name: str(pins[canonicalize_name(req.name)][0])
        for req in requirements
        if not req.specifier.contains(pins[canonicalize_name(req.name)][0], prereleases=True)
    }
    assert not outside, f"{lock.name} pins versions pyproject.toml excludes {outside}: {RELOCK}"


@pytest.mark.parametrize("lock", [DEV_LOCK, RUNTIME_LOCK], ids=["dev", "runtime"])
def test_every_pin_carries_a_hash(lock):
    pins = read_lock(lock)
    assert len(pins) > len(RUNTIME), f"{lock.name} looks truncated: {len(pins)} pins"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    # `pip install --require-hashes` refuses the whole file when a single pin has no hash.
    assert not unhashed, f"{lock.name} pins without --hash: {unhashed}"


def test_the_image_runs_the_versions_the_tests_ran():
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    not_in_dev = sorted(set(runtime) - set(dev))
    assert not not_in_dev, f"runtime.txt pins packages dev.txt lacks: {not_in_dev}"
    differ = {
        name: (str(runtime[name][0]), str(dev[name][0]))
        for name in runtime
        if runtime[name][0] != dev[name][0]
    }
    assert not differ, f"runtime.txt and dev.txt disagree (runtime, dev): {differ}"


def test_the_lock_names_no_machine_specific_index():
    # A local mirror from pip.conf written into the lock would break installs everywhere else.
    for lock in (DEV_LOCK, RUNTIME_LOCK):
        options = [line for line in lock.read_text().splitlines() if line.startswith("-")]
        assert options == [], f"{lock.name} carries pip options: {options}"


def test_the_reader_sees_a_dependency_missing_from_the_lock(tmp_path):
    # The checks above are only as good as read_lock: a known lock fragment, read back.
    fragment = tmp_path / "lock.txt"
    fragment.write_text(
        "django==5.2.20 \\\n"
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via control-tower (pyproject.toml)\n"
        "zope-interface==8.7\n"
    )
    pins = read_lock(fragment)
    assert pins == {"django": (Version("5.2.20"), 2), "zope-interface": (Version("8.7"), 0)}
    assert canonicalize_name("Zope.Interface") in pins
    assert canonicalize_name("djangorestframework") not in pins
