"""Where road data comes from, fetched from the Python package index and checked by SHA-256.

- Coquimbo–La Serena (the demo city): `aequilibrae/reference_files/coquimbo.zip` inside the wheel
  `aequilibrae==1.7.2`; its `project_database.sqlite` (SpatiaLite) holds `links` and `nodes`.
- Monaco (a raw OpenStreetMap extract, for the `--osm` path and its tests):
  `test/data/monaco.osm.pbf` inside the sdist of `osrm-bindings==26.10.0`.

Files are cached outside the repository (`ROAD_DATA_CACHE`, default
`~/.cache/control-tower/roads`), so a second import reads the disk. Data © OpenStreetMap
contributors, ODbL.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from django.conf import settings

COQUIMBO_WHEEL = "aequilibrae==1.7.2"
COQUIMBO_MEMBER = "aequilibrae/reference_files/coquimbo.zip"
COQUIMBO_SHA256 = "43de7e2ac90e87eb8d9ea8149e16f48c0c4e5bdf3ac8946a8f116f3bc51dc2a2"
MONACO_PACKAGE, MONACO_VERSION = "osrm-bindings", "26.10.0"
MONACO_MEMBER = "test/data/monaco.osm.pbf"
MONACO_SHA256 = "36c0f0029ed838897322382611b67e8e5e7bcb07d5b17a25f3574dec54f1c23c"


class SourceError(RuntimeError):
    pass


def cache_dir() -> Path:
    path = Path(settings.ROAD_DATA_CACHE).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(data: bytes, expected: str, what: str) -> bytes:
    actual = _sha256(data)
    if actual != expected:
        raise SourceError(f"{what}: SHA-256 {actual} is not the expected {expected}.")
    return data


def coquimbo_database() -> Path:
    """The SpatiaLite database of the Coquimbo network, fetched once and verified."""
    target = cache_dir() / "coquimbo" / "project_database.sqlite"
    archive = cache_dir() / "coquimbo.zip"
    if not archive.exists() or _sha256(archive.read_bytes()) != COQUIMBO_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(  # noqa: S603 - fixed arguments
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    COQUIMBO_WHEEL,
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "-d",
                    tmp,
                    "-q",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            wheels = list(Path(tmp).glob("aequilibrae-*.whl"))
            if result.returncode != 0 or not wheels:
                raise SourceError(f"pip could not fetch {COQUIMBO_WHEEL}: {result.stderr[-500:]}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = _checked(wheel.read(COQUIMBO_MEMBER), COQUIMBO_SHA256, COQUIMBO_MEMBER)
        archive.write_bytes(data)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as inner:
            target.write_bytes(inner.read("project_database.sqlite"))
    return target


def _index_url() -> str:
    return "https://pypi.org/simple"


def monaco_pbf() -> Path:
    """Monaco's OpenStreetMap extract, from the sdist of osrm-bindings (downloaded from the
    package index directly: building that sdist is not needed to read one file of it)."""
    target = cache_dir() / "monaco.osm.pbf"
    if target.exists() and _sha256(target.read_bytes()) == MONACO_SHA256:
        return target
    listing = (
        urllib.request.urlopen(  # noqa: S310 - a fixed https URL
            f"{_index_url()}/{MONACO_PACKAGE}/", timeout=60
        )
        .read()
        .decode()
    )
    name = f"{MONACO_PACKAGE.replace('-', '_')}-{MONACO_VERSION}.tar.gz"
    match = re.search(rf'href="([^"]*{re.escape(name)})#sha256=([0-9a-f]+)"', listing)
    if match is None:
        raise SourceError(f"{name} is not on the package index.")
    url, sdist_sha = match.groups()
    sdist = _checked(
        urllib.request.urlopen(url, timeout=300).read(),  # noqa: S310
        sdist_sha,
        name,
    )
    with tarfile.open(fileobj=io.BytesIO(sdist)) as tar:
        member = tar.extractfile(f"{name.removesuffix('.tar.gz')}/{MONACO_MEMBER}")
        if member is None:
            raise SourceError(f"{MONACO_MEMBER} is not in {name}.")
        data = _checked(member.read(), MONACO_SHA256, MONACO_MEMBER)
    target.write_bytes(data)
    return target
