"""Safe storage of user uploads: a zipped .mlpackage, a bare .mlmodel, a TorchScript
file or a torch.export archive (.pt2).

Everything happens inside a fresh temporary directory under the destination; only a
fully validated artifact is moved into place, and any failure removes the temporary
directory, so a refused upload leaves nothing on disk. Torch files are checked by
their archive layout only: loading them is the conversion worker's job.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass

from .errors import PackageError, UploadRejected
from .package import ZIP_MAGIC, open_model, parse_spec
from .ziputil import DEFAULT_LIMITS, Limits, extract_entries, inspect_zip, open_zip, read_entry

MLPACKAGE, MLMODEL, TORCHSCRIPT, TORCH_EXPORT = "mlpackage", "mlmodel", "torchscript", "torch_export"
KINDS = (MLPACKAGE, MLMODEL, TORCHSCRIPT, TORCH_EXPORT)
# Extensions accepted for each kind; content decides the kind, the name must agree with it.
EXTENSIONS = {
    MLPACKAGE: (".mlpackage.zip", ".zip", ".mlpackage"),
    MLMODEL: (".mlmodel",),
    TORCHSCRIPT: (".pt", ".pth", ".torchscript", ".ts", ".ptl"),
    TORCH_EXPORT: (".pt2",),
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class StoredUpload:
    kind: str
    path: str  # final artifact: .mlpackage directory or a single file
    original_name: str
    size: int  # bytes received
    sha256: str


def _ext_kinds(filename: str) -> list[str]:
    name = filename.lower()
    return [k for k, exts in EXTENSIONS.items() if name.endswith(exts)]


def _safe_stem(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    for exts in EXTENSIONS.values():
        for ext in sorted(exts, key=len, reverse=True):
            if base.lower().endswith(ext):
                base = base[: -len(ext)]
                break
    stem = _SAFE_NAME.sub("_", base).strip("._")[:80]
    return stem or "model"


def _copy_limited(src, dest_path: str, limits: Limits) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    if isinstance(src, (str, os.PathLike)):
        fh, close = open(src, "rb"), True
    else:
        fh, close = src, False
    try:
        chunks = fh.chunks() if hasattr(fh, "chunks") else iter(lambda: fh.read(1 << 20), b"")
        with open(dest_path, "xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    raise UploadRejected(f"upload is larger than the {limits.max_upload_bytes}-byte limit")
                digest.update(chunk)
                out.write(chunk)
    finally:
        if close:
            fh.close()
    return size, digest.hexdigest()


def _classify_zip(names: list[str]) -> str:
    if any(n == "Manifest.json" or n.endswith("/Manifest.json") for n in names):
        return MLPACKAGE
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1:
        top = tops.pop()
        if f"{top}/archive_format" in names:
            return TORCH_EXPORT
        if f"{top}/data.pkl" in names and any(n.startswith(f"{top}/code/") for n in names):
            return TORCHSCRIPT
        if f"{top}/data.pkl" in names:
            raise UploadRejected(
                "this is a pickled torch.save() checkpoint, which can run arbitrary code when loaded; "
                "upload a TorchScript file (torch.jit.save) or a torch.export archive (torch.export.save)"
            )
    raise UploadRejected(
        "zip is neither an .mlpackage (no Manifest.json), a TorchScript file nor a torch.export archive"
    )


def _extract_mlpackage(zf, infos, work_dir: str, stem: str, limits: Limits) -> str:
    names = [i.filename for i in infos]
    roots = {n[: -len("Manifest.json")] for n in names if n == "Manifest.json" or n.endswith("/Manifest.json")}
    if len(roots) != 1:
        raise UploadRejected("zip must contain exactly one .mlpackage")
    prefix = roots.pop()
    outside = [n for n in names if not n.startswith(prefix)]
    if outside:
        raise UploadRejected(f"zip has files outside the .mlpackage, e.g. {outside[0]!r}")
    target = os.path.join(work_dir, stem + ".mlpackage")
    os.mkdir(target)
    pairs = [(i, i.filename[len(prefix):]) for i in infos if i.filename[len(prefix):]]
    extract_entries(zf, pairs, target, limits)
    return target


def _check_torch_zip(zf, infos, kind: str, limits: Limits) -> None:
    if kind == TORCH_EXPORT:
        fmt = next(i for i in infos if i.filename.endswith("/archive_format"))
        if read_entry(zf, fmt, 64).strip() != b"pt2":
            raise UploadRejected("torch.export archive has an unknown archive_format (expected 'pt2')")
    # Reading every member verifies CRCs: a truncated or corrupted archive is refused now,
    # not later in the worker.
    for info in infos:
        if not info.is_dir():
            try:
                with zf.open(info) as fh:
                    while fh.read(1 << 20):
                        pass
            except Exception as exc:  # noqa: BLE001 - CRC errors, zlib errors, unsupported methods
                raise UploadRejected(f"corrupt zip entry {info.filename!r}: {exc}") from None


def store_upload(src, filename: str, dest_dir: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> StoredUpload:
    """Validate an upload (path or file object with read()/chunks()) and store it in dest_dir.

    Raises UploadRejected with a user-facing message; on failure nothing is left in dest_dir.
    """
    dest_dir = os.fspath(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    ext_kinds = _ext_kinds(filename)
    if not ext_kinds:
        allowed = ", ".join(e for exts in EXTENSIONS.values() for e in exts)
        raise UploadRejected(f"unsupported file type {filename!r}; expected one of: {allowed}")
    work = tempfile.mkdtemp(prefix=".upload-", dir=dest_dir)
    try:
        raw = os.path.join(work, "upload.bin")
        size, sha = _copy_limited(src, raw, limits)
        if size == 0:
            raise UploadRejected("upload is empty")
        with open(raw, "rb") as fh:
            head = fh.read(4)
        stem = _safe_stem(filename)
        if head in ZIP_MAGIC:
            zf = open_zip(raw)
            with zf:
                infos = inspect_zip(zf, limits)
                if not infos:
                    raise UploadRejected("zip archive is empty")
                kind = _classify_zip([i.filename for i in infos])
                if kind not in ext_kinds:
                    raise UploadRejected(f"{filename!r} is named like a {'/'.join(ext_kinds)} file but contains a {kind}")
                if kind == MLPACKAGE:
                    built = _extract_mlpackage(zf, infos, work, stem, limits)
                else:
                    _check_torch_zip(zf, infos, kind, limits)
                    built = os.path.join(work, stem + (".pt2" if kind == TORCH_EXPORT else ".pt"))
                    os.rename(raw, built)
            if kind == MLPACKAGE:
                os.unlink(raw)
                try:
                    open_model(built, limits)  # the extracted package must have a readable spec
                except PackageError as exc:
                    raise UploadRejected(str(exc).replace(work + os.sep, "")) from None
        else:
            if MLMODEL not in ext_kinds:
                raise UploadRejected(f"{filename!r} is not a zip archive, so it cannot be a {'/'.join(ext_kinds)} file")
            if size > limits.max_spec_bytes:
                raise UploadRejected(f".mlmodel is larger than {limits.max_spec_bytes} bytes")
            with open(raw, "rb") as fh:
                try:
                    parse_spec(fh.read(), filename)
                except PackageError as exc:
                    raise UploadRejected(str(exc)) from None
            kind = MLMODEL
            built = os.path.join(work, stem + ".mlmodel")
            os.rename(raw, built)
        final = _unique(os.path.join(dest_dir, os.path.basename(built)))
        os.rename(built, final)
        return StoredUpload(kind, final, filename, size, sha)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unique(path: str) -> str:
    if not os.path.exists(path):
        return path
    root, ext = (path[: -len(".mlpackage")], ".mlpackage") if path.endswith(".mlpackage") else posixpath.splitext(path)
    n = 1
    while os.path.exists(f"{root}-{n}{ext}"):
        n += 1
    return f"{root}-{n}{ext}"
