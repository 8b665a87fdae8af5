"""What to try when a conversion or compression fails: the op it failed on, read from coremltools' or torch's
message, and the known way around it (issue 16, item 1). Pages show this beside the message itself."""
from __future__ import annotations

import re

# (pattern over the message, op group index or None, what to try)
HINTS = (
    (re.compile(r"Unable to lower complex dialect op\s+%?[\w.]+:.*?=\s*(complex_\w+)\(", re.S), 1,
     "coremltools could not lower this FFT/complex op. Perfboard's converter carries a fix for coremltools 9.0 "
     "when a torch-side-quantized (constexpr) weight feeds the FFT; if it still fails, convert in fp16 and "
     "compress the Core ML model with coremltools.optimize.coreml instead (the compress option of the upload), "
     "or leave the FFT block's convs out of the torch-side quantizer (module_name_configs: {name: None})."),
    (re.compile(r"only 0-dimensional arrays can be converted to Python scalars|only length-1 arrays"), None,
     "coremltools 9.0 does not support numpy 2.4 or later; install numpy<2.4 (Perfboard pins it)."),
    (re.compile(r"PyTorch convert function for op '(\w+)' not implemented"), 1,
     "coremltools has no conversion for this torch op: rewrite that part of the model with supported ops, or "
     "register a composite op (coremltools.converters.mil.frontend.torch.torch_op_registry.register_torch_op)."),
    (re.compile(r"Unsupported fx node (\w+)|unsupported op[: ]+'?(\w+)", re.I), 1,
     "coremltools cannot convert this op: try the TorchScript (torch.jit.trace) upload instead of torch.export, "
     "or replace the op in the model."),
    (re.compile(r"complex data as model's output"), None,
     "Core ML has no complex outputs: return torch.view_as_real(x) or x.real and x.imag separately."),
    (re.compile(r"Could not open .*weight\.bin|weight file absent|no weights", re.I), None,
     "this upload has no weights (weights/weight.bin is missing), and compression needs them: upload the whole "
     ".mlpackage folder zipped."),
)


def conversion_hint(message: str) -> dict | None:
    """{"op": op type or "", "try": advice} for a known failure, else None."""
    for pattern, group, advice in HINTS:
        match = pattern.search(message or "")
        if match:
            op = next((g for g in match.groups() if g), "") if group else ""
            return {"op": op, "try": advice}
    return None
