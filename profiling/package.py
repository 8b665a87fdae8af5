"""Open a Core ML model for reading its spec: an .mlpackage folder, a zip of one,
or a bare model.mlmodel. Only the spec is read; weight files are at most stat()ed."""
from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field

from . import _proto
from .errors import PackageError, UploadRejected
from .ziputil import DEFAULT_LIMITS, Limits, inspect_zip, open_zip, read_entry

DEFAULT_SPEC_PATH = "Data/com.apple.CoreML/model.mlmodel"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class OpenedModel:
    spec: object  # Model_pb2.Model
    source: str  # "mlpackage", "mlpackage_zip", "mlmodel"
    path: str
    weight_files: dict = field(default_factory=dict)  # relative name -> size in bytes

    @property
    def weights_present(self) -> bool:
        return bool(self.weight_files)


def parse_spec(data: bytes, what: str):
    Model = _proto.model_pb2().Model
    spec = Model()
    try:
        spec.ParseFromString(data)
    except Exception as exc:  # google.protobuf.message.DecodeError
        raise PackageError(f"{what} is not a Core ML model spec (protobuf decode failed: {exc})") from None
    # Protobuf decoding is permissive: random bytes may parse; a real spec names its model type.
    if spec.specificationVersion <= 0 or spec.WhichOneof("Type") is None:
        raise PackageError(f"{what} is not a Core ML model spec (no specification version or model type)")
    return spec


def _manifest_spec_path(manifest_bytes: bytes, what: str) -> str:
    """Relative path (inside the package) of the root model spec named by Manifest.json."""
    try:
        manifest = json.loads(manifest_bytes)
        root_id = manifest["rootModelIdentifier"]
        rel = manifest["itemInfoEntries"][root_id]["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{what}: Manifest.json is invalid ({type(exc).__name__}: {exc})") from None
    rel = posixpath.normpath(posixpath.join("Data", str(rel)))
    if rel.startswith("/") or rel == ".." or rel.startswith("../"):
        raise PackageError(f"{what}: Manifest.json points outside the package ({rel!r})")
    return rel


def _open_dir(path: str) -> OpenedModel:
    root = os.path.realpath(path)
    manifest = os.path.join(root, "Manifest.json")
    if os.path.isfile(manifest):
        with open(manifest, "rb") as fh:
            rel = _manifest_spec_path(fh.read(1 * 1024 * 1024), path)
    elif os.path.isfile(os.path.join(root, DEFAULT_SPEC_PATH)):
        rel = DEFAULT_SPEC_PATH
    else:
        raise PackageError(f"{path}: not an .mlpackage (no Manifest.json and no {DEFAULT_SPEC_PATH})")
    spec_path = os.path.realpath(os.path.join(root, rel))
    if not spec_path.startswith(root + os.sep):
        raise PackageError(f"{path}: model spec resolves outside the package (symlink?)")
    if not os.path.isfile(spec_path):
        raise PackageError(f"{path}: model spec {rel} is missing")
    spec = parse_spec(_read_file(spec_path, DEFAULT_LIMITS.max_spec_bytes), f"{path}/{rel}")
    weights_dir = os.path.join(os.path.dirname(spec_path), "weights")
    weight_files = {}
    if os.path.isdir(weights_dir):
        for name in sorted(os.listdir(weights_dir)):
            full = os.path.join(weights_dir, name)
            if os.path.isfile(full):
                weight_files[name] = os.path.getsize(full)
    return OpenedModel(spec, "mlpackage", path, weight_files)


def _find_package_root(names: list[str], what: str) -> str:
    roots = sorted({n[: -len("Manifest.json")] for n in names if n == "Manifest.json" or n.endswith("/Manifest.json")})
    if len(roots) > 1:
        raise PackageError(f"{what}: zip contains several packages ({', '.join(r or '/' for r in roots)})")
    return roots[0] if roots else ""


def _open_zip(path: str, limits: Limits) -> OpenedModel:
    try:
        zf = open_zip(path)
        with zf:
            infos = inspect_zip(zf, limits)
            by_name = {i.filename: i for i in infos}
            names = list(by_name)
            if any(n == "Manifest.json" or n.endswith("/Manifest.json") for n in names):
                prefix = _find_package_root(names, path)
                manifest = read_entry(zf, by_name[prefix + "Manifest.json"], 1 * 1024 * 1024)
                rel = prefix + _manifest_spec_path(manifest, path)
            else:
                mlmodels = [n for n in names if n.endswith(".mlmodel")]
                if len(mlmodels) != 1:
                    raise PackageError(f"{path}: zip holds no .mlpackage (no Manifest.json) and not exactly one .mlmodel")
                rel, prefix = mlmodels[0], posixpath.dirname(mlmodels[0])
                prefix = prefix + "/" if prefix else ""
            if rel not in by_name:
                raise PackageError(f"{path}: model spec {rel} is missing from the zip")
            spec = parse_spec(read_entry(zf, by_name[rel], limits.max_spec_bytes), f"{path}:{rel}")
            weights_prefix = posixpath.join(posixpath.dirname(rel), "weights") + "/"
            weight_files = {
                n[len(weights_prefix):]: i.file_size
                for n, i in by_name.items()
                if n.startswith(weights_prefix) and not i.is_dir()
            }
    except UploadRejected as exc:
        raise PackageError(f"{path}: {exc}") from None
    return OpenedModel(spec, "mlpackage_zip", path, weight_files)


def _read_file(path: str, max_bytes: int) -> bytes:
    size = os.path.getsize(path)
    if size > max_bytes:
        raise PackageError(f"{path}: {size} bytes is larger than the {max_bytes}-byte limit for a model spec")
    with open(path, "rb") as fh:
        return fh.read()


def open_model(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> OpenedModel:
    """Open PATH and parse its spec. Raises PackageError with a user-facing message."""
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            return _open_dir(path)
        if not os.path.exists(path):
            raise PackageError(f"{path}: no such file or directory")
        if not os.path.isfile(path):  # a FIFO or /dev/zero would never end
            raise PackageError(f"{path}: not a regular file")
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head in ZIP_MAGIC:
            return _open_zip(path, limits)
        if not head:
            raise PackageError(f"{path}: file is empty")
        return OpenedModel(parse_spec(_read_file(path, limits.max_spec_bytes), path), "mlmodel", path, {})
    except PermissionError as exc:
        raise PackageError(f"{path}: permission denied ({exc.strerror})") from None
    except IsADirectoryError as exc:
        raise PackageError(f"{path}: {exc.strerror}") from None
    except OSError as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(f"{path}: cannot read ({exc.strerror or exc})") from None
