"""Rule list of known Neural Engine (ANE) limits, each with the source it rests on.

Apple does not publish which ops the ANE supports. Every rule therefore says what
kind of evidence backs it: Apple/coremltools documentation, a community
measurement, or a field report. Placement on a real device (MLComputePlan / Xcode
performance report) always wins over this list.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Source:
    title: str
    url: str  # a public page, or "" when the title is all there is (pages and the CLI then show no link)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str  # "error" fails CI; "warning"/"info" are reported only
    evidence: str
    advice: str
    sources: tuple

    def as_dict(self) -> dict:
        return asdict(self)


COREMLTOOLS_CONSTEXPR = Source(
    "coremltools MIL ops reference: iOS16/iOS18 constexpr ops (compile-time ops that decompress constant weights)",
    "https://apple.github.io/coremltools/source/coremltools.converters.mil.mil.ops.defs.html",
)
COREMLTOOLS_OPT_OVERVIEW = Source(
    "coremltools guide: Model Compression overview",
    "https://apple.github.io/coremltools/docs-guides/source/opt-overview.html",
)
COREMLTOOLS_OPT_CONFIG = Source(
    "coremltools API: coremltools.optimize.coreml configs (weight_threshold, default 2048 elements)",
    "https://apple.github.io/coremltools/source/coremltools.optimize.coreml.config.html",
)
TORCH_PARAMETRIZE = Source(
    "PyTorch: torch.nn.utils.parametrize (register_parametrization / remove_parametrizations)",
    "https://pytorch.org/docs/stable/generated/torch.nn.utils.parametrize.remove_parametrizations.html",
)
FIELD_REPORT_POW = Source(
    "Field report (an app team's Xcode Core ML performance report, iPhone 16 Pro): int8 PTQ of Conv2d subclasses "
    "squaring their weight gives constexpr_affine_dequantize -> pow -> conv; those convs ran on the CPU "
    "(~1,660 us vs ~220 us on the Neural Engine) and the int8 model was slower than fp16",
    "",  # no public page: the title is the evidence
)
COREMLTOOLS_TYPED_EXECUTION = Source(
    "coremltools guide: Typed Execution (ML programs carry per-op fp16/fp32 precision)",
    "https://apple.github.io/coremltools/docs-guides/source/typed-execution.html",
)
HOLLANCE_16BIT = Source(
    "hollance/neural-engine: 'The ANE appears to use float16 for everything' (community notes)",
    "https://github.com/hollance/neural-engine/blob/master/docs/16-bit.md",
)
HOLLANCE_UNSUPPORTED = Source(
    "hollance/neural-engine: Which Core ML layers are not supported by the ANE? (community notes, "
    "self-described as incomplete and possibly wrong; NeuralNetwork-era)",
    "https://github.com/hollance/neural-engine/blob/master/docs/unsupported-layers.md",
)
APPLE_CUSTOM_LAYER = Source(
    "Apple: MLCustomLayer (custom layers are implemented for the CPU and optionally Metal/GPU only)",
    "https://developer.apple.com/documentation/coreml/mlcustomlayer",
)

RULES: dict[str, Rule] = {}


def _rule(**kw) -> Rule:
    rule = Rule(**kw)
    RULES[rule.id] = rule
    return rule


DYNAMIC_WEIGHT = _rule(
    id="dynamic_weight",
    title="Weight computed at run time",
    severity="error",
    evidence="documented (constexpr ops are compile-time only) + field report",
    advice=(
        "This op's weight is not a const/constexpr value but the output of run-time ops, so it is "
        "decompressed and recomputed in memory on every load/prediction and the op is likely to leave "
        "the Neural Engine. Fold the transformation into the weights before conversion (e.g. "
        "torch.nn.utils.parametrize.remove_parametrizations(..., leave_parametrized=True), or bake "
        "w**2 into a plain Conv2d), then quantize; or convert to fp16 first (the converter folds "
        "constant transforms) and compress with coremltools.optimize.coreml."
    ),
    sources=(COREMLTOOLS_CONSTEXPR, COREMLTOOLS_OPT_OVERVIEW, TORCH_PARAMETRIZE, FIELD_REPORT_POW),
)
UNCOMPRESSED_WEIGHT = _rule(
    id="uncompressed_weight",
    title="Large uncompressed weight beside compressed ones",
    severity="warning",
    evidence="documented (coremltools compresses only ops its config selects)",
    advice=(
        "The model stores other weights compressed but keeps this one as a float const: the "
        "compression pass skipped it (custom module, op type or name excluded, or below the size "
        "threshold). Check the optimization config or the torch-side quantizer's module list."
    ),
    sources=(COREMLTOOLS_OPT_CONFIG, COREMLTOOLS_OPT_OVERVIEW),
)
INPUT_DEPENDENT_WEIGHT = _rule(
    id="input_dependent_weight",
    title="Weight computed from the model's input",
    severity="warning",
    evidence="documented (a constexpr/const weight is fixed at compile time; this one changes with every input)",
    advice=(
        "This op's weight depends on the model's input (a kernel predicted from the activations, e.g. "
        "fc(x.mean(...)) reshaped into a filter, or a filter passed as an input), so it can be neither stored nor "
        "compressed, and folding it into the weights is impossible. This is not a quantization problem: the "
        "stored weights feeding it (e.g. the fc) are compressed as usual. Expect the op to run with a dynamic "
        "weight; check its placement on a device, and if the Neural Engine matters, restructure it as a fixed "
        "conv followed by an input-dependent scale (dynamic channel weighting) where the model allows."
    ),
    sources=(COREMLTOOLS_CONSTEXPR,),
)
CONVERTER_CONSTANT = _rule(
    id="converter_constant",
    title="Large constant made by the converter",
    severity="info",
    evidence="documented (coremltools lowers FFT ops into matmuls with cos/sin DFT matrices)",
    advice=(
        "This float constant is not one of the model's weights: coremltools made it while lowering an FFT op "
        "(torch.fft.rfftn/irfftn become matmuls with cos/sin DFT matrices of the transformed size). The "
        "torch-side quantizer never sees it, so its module list cannot change it. It grows with the input size "
        "(side x side elements); coremltools.optimize.coreml can compress it with the rest, at some cost to "
        "the FFT's accuracy, or leave it in fp16."
    ),
    sources=(COREMLTOOLS_OPT_CONFIG,),
)
FP32_COMPUTE = _rule(
    id="fp32_compute",
    title="float32 computation",
    severity="warning",
    evidence="documented precision model + community measurement that the ANE computes in fp16",
    advice=(
        "This op computes in float32. The Neural Engine is reported to run float16 only, so fp32 ops "
        "run on CPU/GPU. Convert with compute_precision=ct.precision.FLOAT16 (the default for ML "
        "programs) unless accuracy needs fp32."
    ),
    sources=(COREMLTOOLS_TYPED_EXECUTION, HOLLANCE_16BIT),
)
GATHER = _rule(
    id="gather",
    title="gather-type op",
    severity="info",
    evidence="community observation (NeuralNetwork format); verify with MLComputePlan",
    advice="gather ops were observed not to run on the ANE; check placement on a device.",
    sources=(HOLLANCE_UNSUPPORTED,),
)
DILATED_CONV = _rule(
    id="dilated_conv",
    title="Dilated convolution",
    severity="info",
    evidence="community observation (NeuralNetwork format); verify with MLComputePlan",
    advice="Dilated convolutions were observed not to run on the ANE; check placement on a device.",
    sources=(HOLLANCE_UNSUPPORTED,),
)
RECURRENT = _rule(
    id="recurrent",
    title="RNN layer (LSTM/GRU)",
    severity="info",
    evidence="community observation (NeuralNetwork format); verify with MLComputePlan",
    advice="RNN layers such as LSTM/GRU were observed not to run on the ANE; check placement on a device.",
    sources=(HOLLANCE_UNSUPPORTED,),
)
CUSTOM_LAYER = _rule(
    id="custom_layer",
    title="Custom layer",
    severity="warning",
    evidence="documented (MLCustomLayer has CPU and Metal implementations only)",
    advice="Custom layers cannot run on the Neural Engine; replace the layer with built-in ops.",
    sources=(APPLE_CUSTOM_LAYER, HOLLANCE_UNSUPPORTED),
)
BROADCASTABLE_LAYER = _rule(
    id="broadcastable_layer",
    title="Broadcastable / ND layer (NeuralNetwork format)",
    severity="info",
    evidence="community observation; verify with MLComputePlan",
    advice=(
        "Broadcastable and *ND NeuralNetwork layers were observed to fall back to CPU/GPU; older "
        "layer types or an ML program conversion may avoid them."
    ),
    sources=(HOLLANCE_UNSUPPORTED,),
)

# Op types (MIL) and layer types (NeuralNetwork) the simple rules match on.
MIL_GATHER_OPS = {"gather", "gather_nd", "gather_along_axis"}
MIL_RECURRENT_OPS = {"lstm", "gru", "rnn"}
NN_GATHER_LAYERS = {"gather", "gatherND", "gatherAlongAxis"}
NN_RECURRENT_LAYERS = {"uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent"}
