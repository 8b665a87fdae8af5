"""Conversion and compression wrappers: results and failure reporting (stage + own message)."""
from __future__ import annotations

import pytest

from profiling.compress import compress
from profiling.convert import ConversionError, convert_torch
from profiling.lint import lint_spec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny")
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 5), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3)).eval()
    x = torch.rand(1, 3, 16, 16)
    torch.jit.save(torch.jit.trace(m, x), d / "m.pt")
    torch.export.save(torch.export.export(m, (x,)), d / "m.pt2")
    return d


def test_torchscript_file_converts_with_target_and_shape(tiny):
    ml = convert_torch(str(tiny / "m.pt"), [("image", (1, 3, 16, 16))], minimum_deployment_target="iOS16")
    spec = ml.get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == 7  # iOS16
    assert [i.name for i in spec.description.input] == ["image"]
    assert list(spec.description.input[0].type.multiArrayType.shape) == [1, 3, 16, 16]


def test_torch_export_archive_converts(tiny):
    ml = convert_torch(str(tiny / "m.pt2"), None, minimum_deployment_target="iOS18")
    assert ml.get_spec().specificationVersion == 9
    assert lint_spec(ml.get_spec())["ops"]["conv"] == 2


@pytest.fixture(scope="module")
def tiny_fp16(tiny):
    return convert_torch(str(tiny / "m.pt"), [(1, 3, 16, 16)])


@pytest.mark.parametrize("method, op", [
    ("int8", "constexpr_affine_dequantize"),
    ("palettize4", "constexpr_lut_to_dense"),
    ("palettize6", "constexpr_lut_to_dense"),
    ("palettize8", "constexpr_lut_to_dense"),
])
def test_compression_methods_compress_every_conv(tiny_fp16, method, op):
    report = lint_spec(compress(tiny_fp16, method).get_spec())
    assert report["ops"][op] == 2
    assert report["compressed_fraction"] > 0.98
    assert report["findings"] == []


def test_palettize_bits_shrink_storage(tiny_fp16):
    sizes = {b: lint_spec(compress(tiny_fp16, f"palettize{b}").get_spec())["weights"]["constexpr_lut_to_dense"] for b in (4, 8)}
    assert sizes[4] < sizes[8]


def test_conversion_failure_carries_stage_and_coremltools_message(tiny):
    with pytest.raises(ConversionError) as err:
        convert_torch(str(tiny / "m.pt"), [(1, 3)])  # wrong rank for a conv
    assert err.value.stage == "convert"
    assert "conv" in err.value.message and "Traceback" not in err.value.message
    assert err.value.as_dict() == {"stage": "convert", "message": err.value.message}


def test_load_failure_is_a_load_stage_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript file")
    with pytest.raises(ConversionError) as err:
        convert_torch(str(bad), [(1, 3, 8, 8)])
    assert err.value.stage == "load" and "zip" in err.value.message.lower()


@pytest.mark.parametrize("kwargs, stage, text", [
    ({"minimum_deployment_target": "iOS9"}, "inputs", "deployment target"),
    ({"precision": "int4"}, "inputs", "precision"),
])
def test_bad_options(tiny, kwargs, stage, text):
    with pytest.raises(ConversionError) as err:
        convert_torch(str(tiny / "m.pt"), [(1, 3, 16, 16)], **kwargs)
    assert err.value.stage == stage and text in err.value.message


def test_torchscript_needs_shapes(tiny):
    with pytest.raises(ConversionError, match="input shapes"):
        convert_torch(str(tiny / "m.pt"), [])


def test_unknown_compression(tiny_fp16):
    with pytest.raises(ConversionError) as err:
        compress(tiny_fp16, "int3")
    assert err.value.stage == "compress"
