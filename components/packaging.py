"""Builds the Tencent COS source function package: a deterministic zip named by its content hash.

The zip holds `index.py` and its sibling modules at the root (SCF handler `index.main_handler`) and
nothing else: the handler needs only the standard library of SCF's Python 3.10 runtime. Same sources
give the same bytes (fixed timestamps, order, permissions, no compression-library variance), so the
file name changes, and Pulumi redeploys the function, exactly when the code changes.

Standard library only and no Pulumi import: the component calls this at program run time, and
`python -m components.packaging OUT_DIR` builds the zip by hand (the path is the last line printed).
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import sys
import zipfile

SOURCE_DIR = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "tencent_cos_source"
PACKAGE_PREFIX = "tencent-cos-source-"
# The package marker of the repository layout means nothing at the zip root.
_NOT_SHIPPED = {"__init__.py", "__main__.py"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_FILE_MODE = 0o100644  # regular file, rw-r--r--


def package_sources(source_dir: pathlib.Path = SOURCE_DIR) -> list[pathlib.Path]:
    """The modules that go into the zip, in archive order."""
    sources = sorted(
        path
        for path in source_dir.glob("*.py")
        if path.name not in _NOT_SHIPPED and not path.name.startswith("test_")
    )
    if not any(path.name == "index.py" for path in sources):
        raise FileNotFoundError(f"no index.py in {source_dir}")
    return sources


def package_bytes(source_dir: pathlib.Path = SOURCE_DIR) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: deflate output differs between zlib builds, which would change the hash
    # (and redeploy the function) from one machine to the next. The package is a few dozen KiB.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in package_sources(source_dir):
            info = zipfile.ZipInfo(path.name, date_time=_FIXED_TIME)
            info.create_system = 3  # Unix, whatever the build machine is
            info.external_attr = _FILE_MODE << 16
            # A Windows checkout with CRLF endings must give the same package.
            archive.writestr(info, path.read_bytes().replace(b"\r\n", b"\n"))
    return buffer.getvalue()


def build_function_package(
    out_dir: str | os.PathLike[str], source_dir: pathlib.Path = SOURCE_DIR
) -> pathlib.Path:
    """Write the zip into out_dir (created if needed) and return its absolute path."""
    data = package_bytes(source_dir)
    digest = hashlib.sha256(data).hexdigest()[:16]
    directory = pathlib.Path(out_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{PACKAGE_PREFIX}{digest}.zip"
    if not (target.exists() and target.read_bytes() == data):
        # Written beside and renamed, so a concurrent reader never sees half a zip.
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m components.packaging OUT_DIR", file=sys.stderr)
        return 2
    print(build_function_package(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
