"""Graph lint on models built in the session (see conftest.Zoo)."""
from __future__ import annotations

import math

import pytest

from profiling.errors import PackageError
from profiling.lint import lint_path

CHAIN = ["constexpr_affine_dequantize", "pow", "conv"]


def _conv_weight_numels(zoo):
    return [math.prod(c.weight.shape) for c in zoo.sq_net.convs]


def test_plain_conv_net_quantizes_fully(zoo):
    report = lint_path(zoo.plain_int8)
    assert report["findings"] == []
    assert report["has_dynamic_weight"] is False
    assert report["compressed_fraction"] == pytest.approx(1.0, abs=0.05)
    assert report["ops"]["conv"] == 3
    assert report["weights"]["constexpr_affine_dequantize"] > 0


def test_fp16_conversion_folds_the_pow(zoo):
    report = lint_path(zoo.sq_fp16)
    assert "pow" not in report["ops"]
    assert report["findings"] == []
    assert report["compressed_fraction"] == 0.0  # nothing compressed, all fp16 consts
    assert report["weights"]["fp16_const"] > 0


def _assert_pow_chains(report, zoo):
    numels = _conv_weight_numels(zoo)
    assert report["ops"].get("pow") == len(numels), "the pow must survive in the graph for this fixture"
    dyn = [f for f in report["findings"] if f["rule"] == "dynamic_weight"]
    assert len(dyn) == len(numels)
    for f, numel in zip(dyn, numels):
        assert f["op_type"] == "conv"
        assert f["chain"] == CHAIN
        # fp16 dequantized weight + fp16 pow output, both materialised at run time.
        assert f["runtime_bytes"] == 2 * numel * 2
        assert "parametrize" in f["advice"]
        assert set(f) >= {"rule", "op", "op_type", "chain", "runtime_bytes", "advice"}
    assert report["has_dynamic_weight"] is True


def test_squared_weight_int8_is_flagged_with_chain_and_bytes(zoo):
    report = lint_path(zoo.sq_int8)
    _assert_pow_chains(report, zoo)
    # The conv weights are stored compressed but decompressed at run time: not "actually" compressed.
    assert report["weights_dense"]["runtime_decompressed"] == sum(n * 2 for n in _conv_weight_numels(zoo))
    assert report["compressed_fraction"] < 0.2
    assert report["source"]["weights_present"] is True


def test_flagged_without_weight_file(zoo, helpers, tmp_path):
    spec_only = helpers.spec_only_copy(zoo.sq_int8, tmp_path)
    report = lint_path(spec_only)
    assert report["source"]["weights_present"] is False
    _assert_pow_chains(report, zoo)
    assert report["weights"] == lint_path(zoo.sq_int8)["weights"]  # sizes come from the spec only


def test_flagged_from_bare_mlmodel(zoo, helpers, tmp_path):
    report = lint_path(helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path))
    assert report["source"]["kind"] == "mlmodel"
    _assert_pow_chains(report, zoo)


def test_flagged_from_zipped_package(zoo, helpers, tmp_path):
    z = helpers.zip_dir(zoo.sq_int8, tmp_path / "sq.mlpackage.zip", extra=[("__MACOSX/._x", b"junk")])
    report = lint_path(z)
    assert report["source"]["kind"] == "mlpackage_zip"
    _assert_pow_chains(report, zoo)


def test_baked_weights_are_clean(zoo):
    report = lint_path(zoo.baked_int8)
    assert "pow" not in report["ops"]
    assert report["findings"] == []
    assert report["compressed_fraction"] > 0.9


def test_fp16_then_coreml_int8_is_clean(zoo):
    report = lint_path(zoo.sq_fp16_then_int8)
    assert "pow" not in report["ops"]
    assert not report["has_dynamic_weight"]


def test_baked_model_computes_the_same_function(zoo):
    import torch

    baked = zoo.baked_copy(zoo.sq_net)
    assert torch.allclose(baked(zoo.example), zoo.sq_net(zoo.example), atol=1e-5)


def test_skipped_module_is_reported_as_uncompressed(zoo):
    report = lint_path(zoo.skipped_int8)
    unc = [f for f in report["findings"] if f["rule"] == "uncompressed_weight"]
    assert len(unc) == 1
    assert unc[0]["chain"] == ["const", "conv"]
    assert unc[0]["runtime_bytes"] == 64 * 64 * 3 * 3 * 2
    assert unc[0]["weight_shape"] == [64, 64, 3, 3]
    assert not report["has_dynamic_weight"]
    assert 0.3 < report["compressed_fraction"] < 0.9


def test_rule_sources_are_cited(zoo):
    report = lint_path(zoo.sq_int8)
    rule = next(r for r in report["rules"] if r["id"] == "dynamic_weight")
    # documented sources link their page; a field report describes itself (test_page_fixes, issue 12)
    assert rule["sources"] and all(s["url"] for s in rule["sources"] if "Field report" not in s["title"])


def test_lint_does_not_import_torch(zoo):
    import subprocess
    import sys

    code = (
        "import sys; from profiling.lint import lint_path; r = lint_path(sys.argv[1]); "
        "assert r['has_dynamic_weight']; print('torch' in sys.modules, 'coremltools' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, zoo.sq_int8], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"hello world, not a model"])
def test_unreadable_inputs_raise_package_error(tmp_path, content):
    p = tmp_path / "model.mlmodel"
    p.write_bytes(content)
    with pytest.raises(PackageError):
        lint_path(p)


def test_special_files_are_refused():
    with pytest.raises(PackageError, match="not a regular file"):
        lint_path("/dev/zero")


def test_manifest_pointing_outside_is_refused(zoo, tmp_path):
    import json
    import shutil

    pkg = tmp_path / "evil.mlpackage"
    shutil.copytree(zoo.sq_int8, pkg)
    manifest = json.loads((pkg / "Manifest.json").read_text())
    root = manifest["rootModelIdentifier"]
    manifest["itemInfoEntries"][root]["path"] = "../../../../etc/passwd"
    (pkg / "Manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="outside"):
        lint_path(pkg)


def test_ios18_blockwise_chain_and_inline_storage(zoo):
    report = lint_path(zoo.sq_int8_ios18)
    dyn = [f for f in report["findings"] if f["rule"] == "dynamic_weight"]
    assert [f["chain"] for f in dyn] == [["constexpr_blockwise_shift_scale", "pow", "conv"]] * 3
    # int8 data + fp16 scales passed inline to the constexpr ops are counted from their declared types.
    numels = _conv_weight_numels(zoo)
    assert report["weights"]["constexpr_blockwise_shift_scale"] >= sum(numels) + 10 * 32
    assert [f["runtime_bytes"] for f in dyn] == [4 * n for n in numels]


def test_neuralnetwork_format_is_linted(zoo):
    report = lint_path(zoo.sq_neuralnetwork)
    assert report["format"] == "neuralnetwork"
    assert report["ops"]["convolution"] == 3
    assert report["weights"]["nn_fp32"] == 4 * sum(p.numel() for p in zoo.sq_net.parameters())
    assert report["compressed_fraction"] == 0.0


def test_even_power_advice_recommends_asymmetric_quantization(zoo):
    f = next(f for f in lint_path(zoo.sq_int8)["findings"] if f["rule"] == "dynamic_weight")
    assert "asymmetric" in f["advice"]


def _mil_model(build):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    prog = build(mb, ct)
    return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17)


def test_activation_path_through_a_big_const_is_not_a_weight():
    import numpy as np

    from profiling.lint import lint_spec

    emb = np.random.default_rng(0).random((1000, 64)).astype(np.float16)
    w = np.random.default_rng(1).random((64, 64)).astype(np.float16)

    def build(mb, ct):
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8), dtype=ct.converters.mil.mil.types.int32)],
                    opset_version=ct.target.iOS17)
        def prog(ids):
            return mb.matmul(x=mb.gather(x=emb, indices=ids, axis=0), y=w)  # embedding lookup, then a weight
        return prog

    report = lint_spec(_mil_model(build).get_spec())
    assert report["ops"]["matmul"] == 1
    assert "dynamic_weight" not in report["summary"]


def test_matmul_on_a_transformed_compressed_weight_is_flagged():
    import numpy as np

    from profiling.lint import lint_spec

    q = np.random.default_rng(0).integers(-127, 127, (64, 64)).astype(np.int8)

    def build(mb, ct):
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64), dtype=ct.converters.mil.mil.types.fp16)],
                    opset_version=ct.target.iOS17)
        def prog(x):
            w = mb.constexpr_affine_dequantize(quantized_data=q, zero_point=np.int8(0), scale=np.float16(0.01), axis=0)
            return mb.matmul(x=x, y=mb.square(x=w))  # (a transpose would be fused into matmul)
        return prog

    report = lint_spec(_mil_model(build).get_spec())
    dyn = [f for f in report["findings"] if f["rule"] == "dynamic_weight"]
    assert [f["chain"] for f in dyn] == [["constexpr_affine_dequantize", "square", "matmul"]]
    assert dyn[0]["param"] == "y" and dyn[0]["runtime_bytes"] == 2 * 64 * 64 * 2
    assert "asymmetric" in dyn[0]["advice"]  # square is non-negative
