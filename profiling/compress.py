"""Weight compression with coremltools.optimize.coreml (int8 linear quantization, symmetric or asymmetric;
4/6/8-bit palettization). Failures raise ConversionError(stage="compress").

``int8_asymmetric`` (mode 'linear', a zero point per channel) suits weights that are all non-negative, such as
the users' folded ``w ** 2``: symmetric int8 spends half its range on values that never occur."""
from __future__ import annotations

from .convert import stage
from .errors import ConversionError

METHODS = ("int8", "int8_asymmetric", "palettize4", "palettize6", "palettize8")
DEFAULT_WEIGHT_THRESHOLD = 2048  # coremltools' own default: smaller tensors stay fp16


def quantize_int8(mlmodel, *, mode: str = "linear_symmetric", granularity: str = "per_channel",
                  weight_threshold: int = DEFAULT_WEIGHT_THRESHOLD):
    import coremltools.optimize.coreml as cto

    with stage("compress"):
        op_config = cto.OpLinearQuantizerConfig(
            mode=mode, dtype="int8", granularity=granularity, weight_threshold=weight_threshold
        )
        return cto.linear_quantize_weights(mlmodel, config=cto.OptimizationConfig(global_config=op_config))


def palettize(mlmodel, nbits: int, *, mode: str = "kmeans", weight_threshold: int = DEFAULT_WEIGHT_THRESHOLD):
    import coremltools.optimize.coreml as cto

    if nbits not in (4, 6, 8):
        raise ConversionError("compress", f"palettization supports 4, 6 or 8 bits, got {nbits}")
    with stage("compress"):
        op_config = cto.OpPalettizerConfig(mode=mode, nbits=nbits, weight_threshold=weight_threshold)
        return cto.palettize_weights(mlmodel, config=cto.OptimizationConfig(global_config=op_config))


def compress(mlmodel, method: str, **kwargs):
    """Dispatch by method name: "int8", "int8_asymmetric", "palettize4", "palettize6" or "palettize8"."""
    if method == "int8":
        return quantize_int8(mlmodel, **kwargs)
    if method == "int8_asymmetric":
        return quantize_int8(mlmodel, mode="linear", **kwargs)
    if method in METHODS:
        return palettize(mlmodel, int(method[len("palettize"):]), **kwargs)
    raise ConversionError("compress", f"unknown compression {method!r}; choose one of {', '.join(METHODS)}")
