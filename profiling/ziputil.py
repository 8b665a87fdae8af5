"""Checks that make a zip archive safe to read or extract.

Everything is decided from the central directory before a byte is decompressed;
extraction then re-counts bytes, so lying headers cannot exceed the limits either.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass

from .errors import UploadRejected

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 2 * GiB
    max_uncompressed_bytes: int = 4 * GiB
    max_entries: int = 10_000
    # Weights compress poorly (fp16 noise ~1.1x); untrained zero weights compress well,
    # so the ratio is only enforced once an archive expands beyond ratio_floor_bytes.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 16 * MiB
    max_spec_bytes: int = 2 * GiB


DEFAULT_LIMITS = Limits()

# Entries that macOS Finder adds to zips; never extracted.
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = (".DS_Store",)


def is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES) or name.rsplit("/", 1)[-1] in _JUNK_NAMES


def check_entry_name(name: str) -> None:
    if not name or "\x00" in name:
        raise UploadRejected(f"zip entry with an empty or NUL-containing name: {name!r}")
    if "\\" in name:
        raise UploadRejected(f"zip entry uses backslashes (possible path traversal): {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UploadRejected(f"zip entry has an absolute path: {name!r}")
    parts = name.rstrip("/").split("/")
    if any(p in ("..", "") for p in parts):
        raise UploadRejected(f"zip entry escapes the archive (path traversal): {name!r}")


def is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def open_zip(path: str | os.PathLike) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UploadRejected(f"corrupt zip archive: {exc}") from None
    except OSError as exc:
        raise UploadRejected(f"cannot read zip archive: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile raises NotImplementedError, UnicodeDecodeError, struct.error...
        raise UploadRejected(f"corrupt or unsupported zip archive ({type(exc).__name__}: {exc})") from None


def inspect_zip(zf: zipfile.ZipFile, limits: Limits = DEFAULT_LIMITS) -> list[zipfile.ZipInfo]:
    """Validate every entry; return the non-junk entries. Raises UploadRejected."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UploadRejected(f"zip has {len(infos)} entries; the limit is {limits.max_entries}")
    seen: set[str] = set()
    total = 0
    total_compressed = 0
    kept = []
    for info in infos:
        name = info.filename
        check_entry_name(name)
        if name in seen:
            raise UploadRejected(f"zip has duplicate entries named {name!r}")
        seen.add(name)
        if is_symlink(info):
            raise UploadRejected(f"zip entry is a symbolic link, which is not allowed: {name!r}")
        if info.flag_bits & 0x1:
            raise UploadRejected(f"zip entry is encrypted: {name!r}")
        total += info.file_size
        total_compressed += info.compress_size
        if total > limits.max_uncompressed_bytes:
            raise UploadRejected(
                f"zip expands to more than {limits.max_uncompressed_bytes} bytes (zip bomb?)"
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadRejected(
                f"zip entry {name!r} has a compression ratio above {limits.max_ratio:g} (zip bomb?)"
            )
        if not is_junk(name):
            kept.append(info)
    if total > limits.ratio_floor_bytes and total > limits.max_ratio * max(total_compressed, 1):
        raise UploadRejected(f"zip has a compression ratio above {limits.max_ratio:g} (zip bomb?)")
    return kept


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    """Read one entry fully, refusing more than max_bytes whatever its header says."""
    if info.file_size > max_bytes:
        raise UploadRejected(f"zip entry {info.filename!r} is larger than {max_bytes} bytes")
    chunks, size = [], 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(1 * MiB)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRejected(f"zip entry {info.filename!r} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise UploadRejected(f"corrupt zip entry {info.filename!r}: {exc}") from None
    except Exception as exc:  # zlib.error and friends
        if isinstance(exc, UploadRejected):
            raise
        raise UploadRejected(f"corrupt zip entry {info.filename!r}: {exc}") from None
    return b"".join(chunks)


def extract_entries(
    zf: zipfile.ZipFile,
    entries: list[tuple[zipfile.ZipInfo, str]],
    dest_root: str,
    limits: Limits = DEFAULT_LIMITS,
) -> int:
    """Extract (entry, relative target) pairs under dest_root, which must be a fresh dir.

    Files are created with O_EXCL|O_NOFOLLOW so nothing can be redirected outside.
    Returns the number of bytes written.
    """
    written = 0
    root = os.path.realpath(dest_root)
    for info, rel in entries:
        check_entry_name(rel)
        target = os.path.realpath(os.path.join(root, rel))
        if not target.startswith(root + os.sep):
            raise UploadRejected(f"zip entry escapes the archive (path traversal): {info.filename!r}")
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                remaining = info.file_size
                while True:
                    chunk = src.read(1 * MiB)
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    written += len(chunk)
                    if remaining < 0 or written > limits.max_uncompressed_bytes:
                        raise UploadRejected(f"zip entry {info.filename!r} expands beyond its declared size")
                    out.write(chunk)
        except UploadRejected:
            raise
        except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError
            raise UploadRejected(f"corrupt zip entry {info.filename!r}: {exc}") from None
    return written
