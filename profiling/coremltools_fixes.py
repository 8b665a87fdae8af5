"""Fixes for coremltools 9.0 defects that stop real models from converting, applied before each conversion.

complex lowering after torch-side quantization
    A model quantized with coremltools.optimize.torch (PostTrainingQuantizer) converts its weights to
    ``constexpr_*`` ops. MIL marks every var computed from a constexpr output as "non-replaceable upstream"
    (``Var.nonreplaceable_vars_upstream``), and ``Block.try_replace_uses_of_var_after_op`` refuses to replace a
    var by one whose set is not a superset. The ``lower_complex_dialect_ops`` pass replaces each complex op
    (``complex_rfftn``, ``complex_irfftn``, ``complex``, ...) by a ``ComplexVar`` built by
    ``_wrap_complex_output`` with no op, hence an empty set. So as soon as a quantized conv feeds an FFT the pass
    fails with ``Unable to lower complex dialect op complex_rfftn``; the FFT and the traced graph are not the
    cause (the same block converts without quantization, where no constexpr is upstream). The fix gives the
    wrapper the union of its real and imaginary parts' sets, which is what the var actually depends on.
"""
from __future__ import annotations

_applied = False


def apply() -> None:
    """Install the fixes once (idempotent; a no-op if coremltools' internals moved)."""
    global _applied
    if _applied:
        return
    _applied = True
    try:
        from coremltools.converters.mil.mil.passes.defs import lower_complex_dialect_ops as lowering
    except ImportError:
        return
    original = getattr(lowering, "_wrap_complex_output", None)
    if original is None or getattr(original, "perfboard_fix", False):
        return

    def wrap_complex_output(original_output, real_data, imag_data):
        wrapped = original(original_output, real_data, imag_data)
        wrapped.nonreplaceable_vars_upstream = (
            set(real_data.nonreplaceable_vars_upstream) | set(imag_data.nonreplaceable_vars_upstream)
        )
        return wrapped

    wrap_complex_output.perfboard_fix = True
    lowering._wrap_complex_output = wrap_complex_output
