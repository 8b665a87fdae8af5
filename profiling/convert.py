"""PyTorch (TorchScript / torch.export) -> Core ML ML program.

Each stage turns failures into ConversionError(stage, message) with the library's own
message, so a job can store and show it instead of a stack trace.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ConversionError, ModelInputError

TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")
PRECISIONS = ("fp16", "fp32")
MAX_MESSAGE = 4000


def error_message(exc: BaseException) -> str:
    """The exception's own text (no traceback), trimmed for storage."""
    msg = str(exc).strip() or type(exc).__name__
    if type(exc).__name__ not in msg:
        msg = f"{type(exc).__name__}: {msg}"
    return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - 15] + " ...[truncated]"


@contextmanager
def stage(name: str):
    try:
        yield
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - every library error becomes a stage failure
        raise ConversionError(name, error_message(exc)) from exc


@dataclass
class InputSpec:
    name: str
    shape: tuple

    @classmethod
    def parse(cls, value, index: int = 0) -> "InputSpec":
        """Accept InputSpec, (name, shape), {"name","shape"} or a bare shape."""
        if isinstance(value, InputSpec):
            return value
        if isinstance(value, dict):
            return cls(str(value.get("name") or f"input_{index}"), _shape(value["shape"]))
        if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str):
            return cls(value[0], _shape(value[1]))
        return cls(f"input_{index}", _shape(value))


def _shape(shape) -> tuple:
    dims = tuple(int(d) for d in shape)
    if not dims or any(d <= 0 for d in dims):
        raise ConversionError("inputs", f"input shape must be positive integers, got {list(shape)!r}")
    return dims


def _target(ct, name: str):
    if name not in TARGETS:
        raise ConversionError("inputs", f"unknown deployment target {name!r}; choose one of {', '.join(TARGETS)}")
    return getattr(ct.target, name)


def load_torch(path: str, kind: str):
    """Load a TorchScript module or a torch.export ExportedProgram (never a pickle).

    Torch archives are programs: the file is first checked without executing anything
    (profiling.torchsafe) and refused with the reason if loading it could run code; torch.load
    is then forced to weights_only=True, so torch.export.load cannot fall back to a full unpickler.
    """
    from .torchsafe import UnsafeModel, check_torch_file

    if kind not in ("torch_export", "torchscript"):
        raise ConversionError("load", f"not a PyTorch model kind: {kind!r}")
    try:
        check_torch_file(path, kind)
    except (UnsafeModel, ModelInputError) as exc:
        raise ConversionError("load", str(exc)) from None
    # Read by torch.load at every call; it overrides even an explicit weights_only=False
    # (torch.export.load retries its sample inputs that way when the safe load fails).
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    import torch

    with stage("load"):
        if kind == "torch_export":
            program = torch.export.load(path)
            # coremltools expects ATen-level ops (its documented torch.export flow).
            return program.run_decompositions({})
        if kind == "torchscript":
            module = torch.jit.load(path, map_location="cpu")
            module.eval()
            return module
        raise ValueError(f"not a PyTorch model kind: {kind!r}")


def convert_torch(
    model_or_path,
    inputs,
    *,
    kind: str | None = None,
    minimum_deployment_target: str = "iOS17",
    precision: str = "fp16",
    pass_pipeline=None,
):
    """Convert to an ML program. ``inputs``: list of shapes / (name, shape) / InputSpec.

    ``model_or_path`` is a path (with ``kind`` "torchscript" or "torch_export"), a
    ScriptModule or an ExportedProgram. Returns a coremltools MLModel.
    """
    import coremltools as ct

    if precision not in PRECISIONS:
        raise ConversionError("inputs", f"precision must be one of {PRECISIONS}, got {precision!r}")
    target = _target(ct, minimum_deployment_target)
    specs = [InputSpec.parse(v, i) for i, v in enumerate(inputs or [])]
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        if kind is None:
            kind = "torch_export" if os.fspath(model_or_path).endswith(".pt2") else "torchscript"
        model = load_torch(os.fspath(model_or_path), kind)
    is_export = type(model).__name__ == "ExportedProgram"
    if not specs and not is_export:
        raise ConversionError("inputs", "a TorchScript model needs its input shapes")
    from . import coremltools_fixes

    coremltools_fixes.apply()
    with stage("convert"):
        kwargs = dict(
            convert_to="mlprogram",
            minimum_deployment_target=target,
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        )
        if specs and not is_export:
            kwargs["inputs"] = [ct.TensorType(name=s.name, shape=s.shape) for s in specs]
        if pass_pipeline is not None:
            kwargs["pass_pipeline"] = pass_pipeline
        return ct.convert(model, **kwargs)


def save_mlmodel(mlmodel, path: str) -> str:
    with stage("save"):
        mlmodel.save(path)
    return path
