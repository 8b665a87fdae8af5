"""Hostile and valid uploads: refused with a clear message and nothing left on disk."""
from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from profiling.errors import PackageError, UploadRejected
from profiling.lint import lint_path
from profiling.uploads import MLMODEL, MLPACKAGE, TORCH_EXPORT, TORCHSCRIPT, store_upload
from profiling.ziputil import Limits


def _zip_bytes(entries, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for e in entries:
            if isinstance(e, zipfile.ZipInfo):
                zf.writestr(e, b"target")
            else:
                zf.writestr(*e)
    return buf.getvalue()


def _refused(tmp_path, data, filename, match, limits=None):
    dest = tmp_path / "store"
    dest.mkdir(exist_ok=True)
    src = tmp_path / "incoming.bin"
    src.write_bytes(data)
    kwargs = {"limits": limits} if limits else {}
    with pytest.raises(UploadRejected, match=match):
        store_upload(io.BytesIO(data), filename, dest, **kwargs)
    assert os.listdir(dest) == [], "a refused upload must leave nothing behind"
    return dest


# --- accepted uploads


def test_zipped_mlpackage_is_extracted_and_lintable(zoo, helpers, tmp_path):
    z = helpers.zip_dir(zoo.sq_int8, tmp_path / "up.zip", extra=[("__MACOSX/._Manifest.json", b"x")])
    stored = store_upload(str(z), "My Model.mlpackage.zip", tmp_path / "store")
    assert stored.kind == MLPACKAGE
    assert stored.path == str(tmp_path / "store" / "My_Model.mlpackage")
    assert sorted(os.listdir(tmp_path / "store")) == ["My_Model.mlpackage"]
    assert not os.path.exists(os.path.join(stored.path, "__MACOSX"))
    assert lint_path(stored.path)["has_dynamic_weight"]
    assert len(stored.sha256) == 64


def test_zip_with_package_contents_at_root(zoo, helpers, tmp_path):
    z = helpers.zip_dir(zoo.plain_int8, tmp_path / "flat.zip", top="")
    stored = store_upload(str(z), "flat.zip", tmp_path / "store")
    assert stored.kind == MLPACKAGE and lint_path(stored.path)["findings"] == []


def test_bare_mlmodel_upload(zoo, helpers, tmp_path):
    bare = helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path)
    with open(bare, "rb") as fh:
        stored = store_upload(fh, "model.mlmodel", tmp_path / "store")
    assert stored.kind == MLMODEL and lint_path(stored.path)["has_dynamic_weight"]


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    import torch

    d = tmp_path_factory.mktemp("torchfiles")
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.rand(1, 3, 8, 8)
    torch.jit.save(torch.jit.trace(m, x), d / "m.pt")
    torch.export.save(torch.export.export(m, (x,)), d / "m.pt2")
    torch.save(m, d / "pickled.pth")
    return d


def test_torchscript_and_export_uploads(torch_files, tmp_path):
    ts = store_upload(str(torch_files / "m.pt"), "net.pt", tmp_path / "store")
    ep = store_upload(str(torch_files / "m.pt2"), "net.pt2", tmp_path / "store")
    assert (ts.kind, ep.kind) == (TORCHSCRIPT, TORCH_EXPORT)
    assert sorted(os.listdir(tmp_path / "store")) == ["net.pt", "net.pt2"]


def test_pickled_checkpoint_is_refused(torch_files, tmp_path):
    _refused(tmp_path, (torch_files / "pickled.pth").read_bytes(), "model.pth", "pickled")


# --- hostile or wrong uploads


def test_corrupt_zip(zoo, helpers, tmp_path):
    data = helpers.zip_dir(zoo.sq_int8, tmp_path / "x.zip").read_bytes()
    _refused(tmp_path, data[: len(data) // 2], "model.zip", "corrupt zip")


def test_zip_with_corrupted_member_data(zoo, helpers, tmp_path):
    data = bytearray(helpers.zip_dir(zoo.sq_int8, tmp_path / "x.zip").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)  # weight.bin
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 10
    for i in range(start, start + 32):
        data[i] ^= 0xFF
    _refused(tmp_path, bytes(data), "model.zip", "corrupt")


def test_corrupt_mlmodel(tmp_path):
    _refused(tmp_path, os.urandom(4096), "model.mlmodel", "not a Core ML model")


def test_zip_bomb_ratio(tmp_path):
    # 64 MiB of zeros deflates to ~64 KiB: ratio ~1000.
    data = _zip_bytes([("Foo.mlpackage/Manifest.json", b"{}"), ("Foo.mlpackage/Data/big.bin", b"\0" * (64 << 20))])
    assert len(data) < 1 << 20
    _refused(tmp_path, data, "model.zip", "zip bomb")


def test_zip_bomb_total_size(tmp_path):
    data = _zip_bytes([("Foo.mlpackage/Manifest.json", b"{}"), ("Foo.mlpackage/Data/a.bin", os.urandom(300_000))])
    _refused(tmp_path, data, "model.zip", "expands to more than", Limits(max_uncompressed_bytes=200_000))


def test_zip_bomb_entry_count(tmp_path):
    data = _zip_bytes([(f"Foo.mlpackage/f{i}", b"") for i in range(50)] + [("Foo.mlpackage/Manifest.json", b"{}")])
    _refused(tmp_path, data, "model.zip", "entries", Limits(max_entries=20))


def test_oversized_upload(tmp_path):
    _refused(tmp_path, b"x" * 5000, "model.mlmodel", "larger than", Limits(max_upload_bytes=1000))


@pytest.mark.parametrize("name", ["../evil.txt", "Foo.mlpackage/../../evil.txt", "/tmp/evil.txt", "Foo.mlpackage\\..\\evil.txt"])
def test_path_traversal_entries(tmp_path, name):
    data = _zip_bytes([("Foo.mlpackage/Manifest.json", b"{}"), (name, b"pwned")])
    _refused(tmp_path, data, "model.zip", "traversal|absolute|backslash")
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entry(tmp_path):
    link = zipfile.ZipInfo("Foo.mlpackage/Data/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip_bytes([("Foo.mlpackage/Manifest.json", b"{}"), link])
    _refused(tmp_path, data, "model.zip", "symbolic link")


def test_traversal_zip_is_refused_by_lint_too(tmp_path):
    p = tmp_path / "evil.zip"
    p.write_bytes(_zip_bytes([("Foo.mlpackage/Manifest.json", b"{}"), ("../evil.txt", b"x")]))
    with pytest.raises(PackageError, match="traversal"):
        lint_path(p)


@pytest.mark.parametrize(
    "filename, data, match",
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "unsupported file type"),
        ("model.mlmodel", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a Core ML model"),
        ("model.pt", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a zip archive"),
        ("model.zip", _zip_bytes([("readme.txt", b"hello")]), "neither an .mlpackage"),
        ("model.mlmodel", b"", "empty"),
    ],
)
def test_wrong_file_types(tmp_path, filename, data, match):
    _refused(tmp_path, data, filename, match)


def test_package_named_as_torchscript_is_refused(zoo, helpers, tmp_path):
    data = helpers.zip_dir(zoo.plain_int8, tmp_path / "x.zip").read_bytes()
    _refused(tmp_path, data, "model.pt", "contains a mlpackage")


def test_package_with_bogus_spec_is_refused(tmp_path):
    manifest = b'{"rootModelIdentifier": "a", "itemInfoEntries": {"a": {"path": "com.apple.CoreML/model.mlmodel"}}}'
    data = _zip_bytes([
        ("Foo.mlpackage/Manifest.json", manifest),
        ("Foo.mlpackage/Data/com.apple.CoreML/model.mlmodel", b"definitely not protobuf \xff\xff"),
    ])
    _refused(tmp_path, data, "model.zip", "not a Core ML model spec")


def test_mutated_archives_fail_cleanly(zoo, helpers, tmp_path):
    """Random byte flips (seeded) in a zipped package: only user-facing errors, nothing left behind."""
    import random

    from profiling.errors import ModelInputError

    data = helpers.zip_dir(zoo.sq_int8, tmp_path / "ok.zip").read_bytes()
    rng = random.Random(5)
    dest = tmp_path / "store"
    for i in range(150):
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(b)) if rng.random() < 0.5 else len(b) - 1 - rng.randrange(600)
            b[pos] = rng.randrange(256)
        path = tmp_path / f"m{i}.zip"
        path.write_bytes(bytes(b))
        for attempt in (lambda: lint_path(path), lambda: store_upload(io.BytesIO(bytes(b)), "m.zip", dest)):
            try:
                attempt()
            except ModelInputError:
                pass
        for left in os.listdir(dest):  # accepted ones are fine; remove them for the next round
            assert not left.startswith(".upload-"), "temporary upload directory left behind"
            import shutil

            shutil.rmtree(dest / left, ignore_errors=True)


@pytest.mark.parametrize("patch", ["version", "utf8_name"])
def test_unsupported_zip_headers_are_refused(tmp_path, patch):
    data = bytearray(_zip_bytes([("Foo.mlpackage/Manifest.json", b"{}")]))
    cd = data.index(b"PK\x01\x02")  # central directory header
    if patch == "version":
        data[cd + 6] = 0xFF  # "version needed to extract": zipfile raises NotImplementedError
    else:
        data[cd + 9] |= 0x08  # general purpose flag bit 11 (0x800): names are UTF-8 ...
        name_at = cd + 46
        data[name_at] = 0xFF  # ... but this one is not: UnicodeDecodeError
    _refused(tmp_path, bytes(data), "model.zip", "corrupt or unsupported zip")
    p = tmp_path / "x.zip"
    p.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="corrupt or unsupported zip"):
        lint_path(p)
