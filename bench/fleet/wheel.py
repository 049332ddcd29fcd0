"""layerbench as a wheel, made from the very package this process runs (editable or installed),
so every host runs the same code as this one.

The version carries a hash of the package's files as a local label (0.1.0+3f2a...), so a host
whose venv already holds this version needs no install, and any change to the code is a new
version that pip replaces. The zip is deterministic (fixed times, sorted names): the same code
gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import bench
from bench.images import cache_root

DIST_NAME = "layerbench"
PACKAGE_DIR = Path(bench.__file__).resolve().parent
ENTRY_POINTS = "[console_scripts]\nbench = bench.cli:main\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheel:
    path: Path
    version: str  # base version + "+" + 12 hex of the content hash
    requires: tuple[str, ...]  # Requires-Dist, without the test extras


def requirements() -> tuple[str, ...]:
    """layerbench's dependencies as installed here (from its metadata, or pyproject.toml beside bench/)."""
    try:
        found = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError:
        pyproject = PACKAGE_DIR.parent / "pyproject.toml"
        found = tomllib.loads(pyproject.read_text())["project"]["dependencies"] if pyproject.is_file() else []
    return tuple(requirement for requirement in found if "extra ==" not in requirement)


def package_files() -> list[tuple[str, bytes]]:
    """(path inside the wheel, bytes) of every file of the bench package, sorted; no bytecode."""
    files = []
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((str(Path("bench") / path.relative_to(PACKAGE_DIR)), path.read_bytes()))
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata_files(version: str, requires: tuple[str, ...]) -> list[tuple[str, bytes]]:
    dist_info = f"{DIST_NAME}-{version}.dist-info"
    meta = "".join([f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\nRequires-Python: >=3.11\n",
                    *(f"Requires-Dist: {requirement}\n" for requirement in requires)])
    wheel = "Wheel-Version: 1.0\nGenerator: layerbench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return [(f"{dist_info}/METADATA", meta.encode()), (f"{dist_info}/WHEEL", wheel.encode()),
            (f"{dist_info}/entry_points.txt", ENTRY_POINTS.encode())]


def build_wheel(folder: Path | None = None) -> Wheel:
    """The wheel of this layerbench (found in the cache when the code is unchanged)."""
    files, requires = package_files(), requirements()
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    digest.update("\n".join(requires).encode())
    version = f"{bench.__version__}+{digest.hexdigest()[:12]}"
    folder = folder or cache_root() / "fleet" / "wheels"
    path = folder / f"{DIST_NAME}-{version}-py3-none-any.whl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _write(path, files + _metadata_files(version, requires), f"{DIST_NAME}-{version}.dist-info/RECORD")
    return Wheel(path, version, requires)


def _write(path: Path, files: list[tuple[str, bytes]], record_name: str) -> None:
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files) + f"{record_name},,\n"
    temp = path.with_suffix(".tmp")
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*files, (record_name, record.encode())]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    temp.replace(path)
