"""Issue 16: the users' problem-3 model converts on both of their paths and lints as they saw it; kernels computed
from the input are their own finding; converter-made FFT constants are labelled; run-time weight memory is totalled."""
from __future__ import annotations

import pytest

from profiling.lint import lint_path, lint_spec

CHAIN = ["constexpr_affine_dequantize", "pow", "conv"]
SIDE = 64


def test_users_int8_path_converts_and_every_custom_conv_is_a_pow_chain(problem3):
    report = lint_path(problem3["paths"]["int8"])
    dynamic = [f for f in report["findings"] if f["rule"] == "dynamic_weight"]
    assert len(dynamic) == problem3["convs"]
    assert all(f["chain"] == CHAIN for f in dynamic)
    assert report["has_dynamic_weight"] and report["compressed_fraction"] == 0.0
    assert "def folded(conv)" in dynamic[0]["snippet"]


def test_users_fp16_package_has_no_chain(problem3):
    report = lint_path(problem3["paths"]["fp16"])
    assert not report["has_dynamic_weight"] and "pow" not in report["ops"]


def test_run_time_weight_memory_int8_vs_fp16(problem3):
    fp16, int8 = (lint_path(problem3["paths"][k]) for k in ("fp16", "int8"))
    # fp16: the weights are used as stored, nothing is materialised.
    assert fp16["runtime_weights"]["decompressed"] == fp16["runtime_weights"]["computed"] == 0
    assert fp16["runtime_bytes_total"] == fp16["runtime_weights"]["used_as_stored"]
    # int8 (torch-side PTQ of w**2 convs): half the bytes stored, but dequantized and squared copies at run time.
    conv_weights = int8["runtime_weights"]["decompressed"]
    assert int8["runtime_weights"]["computed"] == conv_weights
    assert int8["runtime_weights"]["stored"] < fp16["runtime_weights"]["stored"] * 0.6
    assert int8["runtime_bytes_total"] > fp16["runtime_bytes_total"]
    ranked = int8["runtime_chains"]
    assert [c["runtime_bytes"] for c in ranked] == sorted((c["runtime_bytes"] for c in ranked), reverse=True)
    pattern = int8["runtime_chain_patterns"][0]
    assert pattern["chain"] == CHAIN and pattern["ops"] == problem3["convs"]
    assert pattern["runtime_bytes"] == int8["runtime_weights"]["decompressed"] + int8["runtime_weights"]["computed"]


@pytest.fixture(scope="module")
def ffc_int8():
    """One SimpleFFCBlock(8, 8) through their int8 path: the case that failed with complex_rfftn."""
    import torch

    from profiling.convert import convert_torch
    from tests.profiling.problem3 import SimpleFFCBlock, users_int8

    torch.manual_seed(0)
    block = users_int8(SimpleFFCBlock(8, 8).eval()).eval().requires_grad_(False)
    traced = torch.jit.trace(block, [torch.randn(1, 8, SIDE, SIDE)])
    return convert_torch(traced, [("x", (1, 8, SIDE, SIDE))])


def test_fft_constants_are_labelled_as_made_by_the_converter(ffc_int8):
    report = lint_spec(ffc_int8.get_spec())
    made = [f for f in report["findings"] if f["rule"] == "converter_constant"]
    assert sorted(f["op"].split("_")[0] for f in made) == ["cos", "sin"]
    assert all(f["weight_shape"] == [SIDE, SIDE] for f in made)
    assert "coremltools made it while lowering an FFT op" in made[0]["advice"]
    assert not [f for f in report["findings"] if f["rule"] == "uncompressed_weight"]


def _dynamic_kernel_net():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DynamicKernel(nn.Module):
        """A conv whose 3x3 kernel is predicted from the input: fc(h.mean(...)) reshaped into a filter."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, 8 * 8 * 9)

        def forward(self, x):
            h = self.stem(x)
            kernel = self.fc(h.mean((2, 3))).reshape(8, 8, 3, 3)
            return F.conv2d(h, kernel, padding=1)

    torch.manual_seed(0)
    return DynamicKernel().eval()


@pytest.mark.parametrize("path", ["coremltools_int8", "torch_ptq_int8"])
def test_kernel_computed_from_the_input_is_not_a_dynamic_weight(path):
    import torch

    from profiling.compress import quantize_int8
    from profiling.convert import convert_torch
    from tests.profiling.problem3 import users_int8

    net = _dynamic_kernel_net()
    x = torch.rand(1, 3, 16, 16)
    if path == "torch_ptq_int8":
        model = convert_torch(torch.jit.trace(users_int8(net).eval(), x), [("x", (1, 3, 16, 16))])
    else:
        model = quantize_int8(convert_torch(torch.jit.trace(net, x), [("x", (1, 3, 16, 16))]))
    report = lint_spec(model.get_spec())
    assert not report["has_dynamic_weight"]
    [finding] = [f for f in report["findings"] if f["rule"] == "input_dependent_weight"]
    assert finding["chain"][-1] == "conv" and "linear" in finding["chain"]
    assert "fold" not in finding["advice"].split("folding it")[0]
    # the fc weight feeds linear directly and is compressed: it counts as compressed, not run-time decompressed
    assert report["weights_dense"]["runtime_decompressed"] == 0
    assert report["weights_dense"]["compressed"] >= 8 * 8 * 9 * 8 * 2
    assert report["compressed_fraction"] > 0.5


def test_filter_given_as_a_model_input_is_input_dependent():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 8, 8)), mb.TensorSpec(shape=(4, 4, 3, 3))],
                opset_version=ct.target.iOS17)
    def prog(x, w):
        return mb.conv(x=x, weight=w)

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17)
    report = lint_spec(model.get_spec())
    [finding] = [f for f in report["findings"] if f["rule"] == "input_dependent_weight"]
    assert finding["chain"][0] == "input" and finding["chain"][-1] == "conv"  # through the fp16 cast
    assert "model input 'w'" in finding["advice"]
    assert not report["has_dynamic_weight"]
