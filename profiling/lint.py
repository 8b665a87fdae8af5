"""Graph lint for Core ML models, from the spec alone (no weights, no torch).

Contract (JSON): ``ops`` (count per op type), ``weights`` (stored bytes by storage
kind), ``compressed_fraction`` (share of dense weight bytes that stay compressed),
``findings``: [{"rule", "op", "op_type", "chain", "runtime_bytes", "advice", ...}].
"""
from __future__ import annotations

import os
import re
from collections import Counter

from . import rules as R
from .graph import FLOAT_DTYPES, SHORT_DTYPE, FunctionGraph, functions, tensor_info
from .package import open_model
from .runtime_memory import runtime_memory
from .ziputil import DEFAULT_LIMITS

LINT_VERSION = 1
# Consts coremltools makes when it lowers FFT ops (torch.fft.rfftn/irfftn) into matmuls: cos_0, sin_0_to_fp16, ...
CONVERTER_DFT_NAME = re.compile(r"^(cos|sin)_\d+(_to_fp16|_to_fp32)?$")
# Weight-taking params whose value must be a const/constexpr for the op to keep a constant weight.
WEIGHT_PARAMS = {"conv": "weight", "conv_transpose": "weight", "linear": "weight"}
# matmul/einsum operands are flagged only when they are a transformed stored weight.
MATMUL_PARAMS = {"matmul": ("x", "y")}
# coremltools' default weight_threshold: tensors smaller than this are never compressed.
UNCOMPRESSED_MIN_ELEMENTS = 2048
MAX_CHAIN = 64


class _Acc:
    def __init__(self):
        self.ops = Counter()
        self.weights = Counter()
        self.dense = Counter()  # compressed / runtime_decompressed / uncompressed
        self.findings = []
        self.uncompressed_candidates = []
        self.formats = set()
        self.computed = {}  # id(op) -> bytes of a weight-transforming op's output (computed at run time)


def _storage_bytes(op) -> int:
    """Bytes a constexpr op stores itself: tensor attributes (iOS16) and inline input values (iOS18)."""
    total = 0
    for key, val in op.proto.attributes.items():
        if key == "name":
            continue
        info = tensor_info(val.type)
        if info is not None and info.nbytes:
            total += info.nbytes
    for infos in op.inline.values():
        total += sum(i.nbytes or 0 for i in infos)
    return total


def _walk_chain(g: FunctionGraph, value: str, *, towards_input: bool = False) -> list:
    """Ops from the weight's source up to (not including) the consumer, source first.

    ``towards_input`` follows the operand that depends on the model's input (for a kernel computed from it),
    instead of the biggest one (the stored weight)."""
    chain = []
    seen = set()
    while len(chain) < MAX_CHAIN and value not in seen:
        seen.add(value)
        op = g.producer.get(value)
        if op is None:
            chain.append(("input" if value in g.inputs else "unknown", value, None))
            break
        chain.append((op.type, op.name, op))
        if op.is_const or op.is_constexpr:
            break
        # Follow the biggest tensor operand: the weight, not a scalar exponent or a shape.
        best, best_size = None, -2
        for names in op.inputs.values():
            for name in names:
                if towards_input and g.is_constant(name):
                    continue
                info = g.value_info(name)
                size = info.nbytes if info is not None and info.nbytes is not None else -1
                if size > best_size:
                    best, best_size = name, size
        if best is None:
            break
        value = best
    chain.reverse()
    return chain


def _runtime_bytes(chain) -> int | None:
    total = 0
    for kind, _name, op in chain:
        if op is None or op.is_const:
            continue  # a plain const is already stored; model inputs are the caller's memory
        info = op.out
        if info is None or info.nbytes is None:
            return None
        total += info.nbytes
    return total


# Ops whose output is never negative: a weight made by them fits asymmetric quantization better.
NON_NEGATIVE_OPS = {"abs", "relu", "exp", "sigmoid", "softplus", "square"}


def _non_negative(g: FunctionGraph, chain) -> bool:
    for kind, _name, op in chain:
        if op is None:
            continue
        if kind in NON_NEGATIVE_OPS:
            return True
        if kind == "pow":
            exps = g.const_floats(op.inputs.get("y", [None])[0]) if op.inputs.get("y") else None
            if exps and all(e % 2 == 0 for e in exps):
                return True
    return False


# What to write instead of a conv subclass that transforms its weight in forward (the users' CustomConv2d).
FOLD_SNIPPET = """import torch
from torch import nn

def folded(conv):  # conv: the Conv2d subclass that applies weight ** 2 in forward
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        plain.weight.copy_(conv.weight ** 2)  # the transform, applied once
        if conv.bias is not None:
            plain.bias.copy_(conv.bias)
    return plain

def fold_all(model, kind):  # e.g. fold_all(model, CustomConv2d), then quantize and convert
    for name, child in model.named_children():
        if isinstance(child, kind):
            setattr(model, name, folded(child))
        else:
            fold_all(child, kind)
    return model"""


def _dynamic_weight_finding(g, consumer, param, chain, weight_info):
    rule = R.DYNAMIC_WEIGHT
    advice = rule.advice
    if _non_negative(g, chain):
        advice += (
            " The transformed weights are non-negative, so after folding prefer asymmetric quantization "
            "(coremltools.optimize.coreml mode='linear', or quantization_scheme='affine' in the torch-side "
            "quantizer) over symmetric."
        )
    finding = _chain_finding(rule, g, consumer, param, chain, weight_info, advice)
    if any(kind == "pow" for kind, _, _ in chain):
        finding["snippet"] = FOLD_SNIPPET
    return finding


def _input_dependent_finding(g, consumer, param, chain, weight_info):
    rule = R.INPUT_DEPENDENT_WEIGHT
    advice = rule.advice
    source_kind, source_name, _ = chain[0]
    if source_kind == "input":
        advice = f"The {param} of this op is the model input {source_name!r}. " + advice
    finding = _chain_finding(rule, g, consumer, param, chain, weight_info, advice)
    finding["runtime_bytes"] = None  # activations computed per prediction, not weight memory
    return finding


def _chain_finding(rule, g, consumer, param, chain, weight_info, advice):
    return {
        "rule": rule.id,
        "op": consumer.name,
        "mil_name": consumer.mil_name or consumer.name,
        "op_type": consumer.type,
        "chain": [k for k, _, _ in chain] + [consumer.type],
        "runtime_bytes": _runtime_bytes(chain),
        "advice": advice,
        "severity": rule.severity,
        "function": g.name,
        "param": param,
        "chain_ops": [n for _, n, _ in chain] + [consumer.name],
        "weight_shape": list(weight_info.shape) if weight_info and weight_info.shape is not None else None,
        "weight_dtype": weight_info.dtype if weight_info else None,
    }


def _simple_finding(rule, op, function, detail=None):
    f = {
        "rule": rule.id,
        "op": op.name,
        "mil_name": getattr(op, "mil_name", "") or op.name,
        "op_type": op.type,
        "chain": [op.type],
        "runtime_bytes": None,
        "advice": rule.advice,
        "severity": rule.severity,
        "function": function,
    }
    if detail:
        f["detail"] = detail
    return f


def _lint_function(g: FunctionGraph, acc: _Acc) -> None:
    runtime_sources = set()  # constexpr ops whose output is transformed at run time
    for op in g.ops:
        acc.ops[op.type] += 1
        weight_param = WEIGHT_PARAMS.get(op.type)
        if weight_param and op.inputs.get(weight_param):
            value = op.inputs[weight_param][0]
            if not g.is_constant(value):  # a kernel computed from the input: no stored weight to fix
                chain = _walk_chain(g, value, towards_input=True)
                acc.findings.append(_input_dependent_finding(g, op, weight_param, chain, g.value_info(value)))
                _rule_checks(g, op, acc)
                continue
            chain = _walk_chain(g, value)
            direct = len(chain) == 1 and chain[0][2] is not None and (chain[0][2].is_const or chain[0][2].is_constexpr)
            if not direct:
                acc.findings.append(_dynamic_weight_finding(g, op, weight_param, chain, g.value_info(value)))
                _count_computed(chain, acc)
                if chain[0][2] is not None and chain[0][2].is_constexpr:
                    runtime_sources.add(id(chain[0][2]))
        for param in MATMUL_PARAMS.get(op.type, ()):
            for value in op.inputs.get(param, [])[:1]:
                chain = _walk_chain(g, value)
                src = chain[0][2]
                stored = src is not None and (
                    src.is_constexpr
                    or (src.is_const and (src.out is not None and (src.out.elements or 0) >= UNCOMPRESSED_MIN_ELEMENTS))
                )
                # Only a stored weight transformed by constant-only ops; an activation path that
                # merely touches a big const (e.g. an embedding gather) is not a weight.
                if stored and len(chain) >= 2 and g.is_constant(value):
                    acc.findings.append(_dynamic_weight_finding(g, op, param, chain, g.value_info(value)))
                    _count_computed(chain, acc)
                    if src.is_constexpr:
                        runtime_sources.add(id(src))
        _rule_checks(g, op, acc)

    for op in g.ops:
        out = op.out
        if not (op.is_const or op.is_constexpr):
            for infos in op.inline.values():  # constants given inline to a compute op
                for info in infos:
                    acc.weights[f"{SHORT_DTYPE.get(info.dtype, info.dtype.lower())}_const"] += info.nbytes or 0
                    if info.dtype in FLOAT_DTYPES and info.shape:
                        acc.dense["uncompressed"] += info.nbytes or 0
            continue
        if out is None:
            continue
        consumers = g.consumers.get(op.outputs[0][0], [])
        feeds_constexpr_only = bool(consumers) and all(c.is_constexpr for c in consumers)
        if op.is_const:
            if feeds_constexpr_only:  # iOS18-style compressed data passed to constexpr ops as inputs
                acc.weights[consumers[0].type] += out.nbytes or 0
                continue
            acc.weights[f"{SHORT_DTYPE.get(out.dtype, out.dtype.lower())}_const"] += out.nbytes or 0
            if out.dtype in FLOAT_DTYPES and out.shape:
                acc.dense["uncompressed"] += out.nbytes or 0
                if len(out.shape) >= 2 and (out.elements or 0) >= UNCOMPRESSED_MIN_ELEMENTS:
                    acc.uncompressed_candidates.append((g, op, consumers))
        else:
            acc.weights[op.type] += _storage_bytes(op)
            if not feeds_constexpr_only:
                key = "runtime_decompressed" if id(op) in runtime_sources else "compressed"
                acc.dense[key] += out.nbytes or 0


def _count_computed(chain, acc: _Acc) -> None:
    """Remember the weight-transforming ops of a chain (each once, however many chains share it)."""
    for _kind, _name, op in chain:
        if op is not None and not (op.is_const or op.is_constexpr) and op.out is not None:
            acc.computed[id(op)] = op.out.nbytes or 0


def _rule_checks(g: FunctionGraph, op, acc: _Acc) -> None:
    if op.type in R.MIL_GATHER_OPS:
        acc.findings.append(_simple_finding(R.GATHER, op, g.name))
    elif op.type in R.MIL_RECURRENT_OPS:
        acc.findings.append(_simple_finding(R.RECURRENT, op, g.name))
    elif op.type in ("conv", "conv_transpose"):
        dil = g.const_ints(op.inputs.get("dilations", [None])[0]) if op.inputs.get("dilations") else None
        if dil and any(d > 1 for d in dil):
            acc.findings.append(_simple_finding(R.DILATED_CONV, op, g.name, f"dilations={dil}"))
    out = op.out
    if (
        out is not None
        and out.dtype == "FLOAT32"
        and not (op.is_const or op.is_constexpr or op.type == "cast")
    ):
        acc.findings.append(_simple_finding(R.FP32_COMPUTE, op, g.name))


# --- NeuralNetwork (pre-ML-program) models: weights are inline, so the whole spec was read.

class _Layer:
    def __init__(self, layer):
        self.name = layer.name
        self.type = layer.WhichOneof("layer") or "unknown"
        self.proto = layer


def _nn_weight_params(msg):
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        items = value if repeated else [value]
        for item in items:
            if fd.message_type.name == "WeightParams":
                yield item
            else:
                yield from _nn_weight_params(item)


def _lint_nn(nn, acc: _Acc) -> None:
    producers = {}
    for layer in nn.layers:
        lay = _Layer(layer)
        acc.ops[lay.type] += 1
        for w in _nn_weight_params(getattr(layer, lay.type)):
            quant = w.HasField("quantization")
            floats = len(w.floatValue) * 4
            halfs = len(w.float16Value)
            raw = len(w.rawValue) + len(w.int8RawValue)
            if quant or w.int8RawValue:
                acc.weights["nn_quantized"] += raw + floats + halfs
                acc.dense["compressed"] += raw + floats + halfs
            else:
                acc.weights["nn_fp16" if halfs else "nn_fp32"] += floats + halfs + raw
                acc.dense["uncompressed"] += floats + halfs + raw
        if lay.type == "custom":
            acc.findings.append(_simple_finding(R.CUSTOM_LAYER, lay, "main"))
        elif lay.type in R.NN_GATHER_LAYERS:
            acc.findings.append(_simple_finding(R.GATHER, lay, "main"))
        elif lay.type in R.NN_RECURRENT_LAYERS:
            acc.findings.append(_simple_finding(R.RECURRENT, lay, "main"))
        elif "Broadcastable" in lay.type or lay.type.endswith("ND"):
            acc.findings.append(_simple_finding(R.BROADCASTABLE_LAYER, lay, "main"))
        elif lay.type == "convolution":
            conv = layer.convolution
            if any(d > 1 for d in conv.dilationFactor):
                acc.findings.append(_simple_finding(R.DILATED_CONV, lay, "main", f"dilations={list(conv.dilationFactor)}"))
            if len(layer.input) >= 2:  # second input = weights supplied at run time
                src = producers.get(layer.input[1])
                chain = [src.type if src else "input", lay.type]
                f = _simple_finding(R.DYNAMIC_WEIGHT, lay, "main")
                f["chain"] = chain
                acc.findings.append(f)
        for out in layer.output:
            producers[out] = lay


def _collect(spec, acc: _Acc) -> None:
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        acc.formats.add("mlprogram")
        for g in functions(spec.mlProgram):
            _lint_function(g, acc)
    elif kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        acc.formats.add("neuralnetwork")
        _lint_nn(getattr(spec, kind), acc)
    elif kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
        pipe = spec.pipeline if kind == "pipeline" else getattr(spec, kind).pipeline
        for sub in pipe.models:
            _collect(sub, acc)
    else:
        acc.formats.add(kind or "unknown")


def lint_spec(spec, *, weight_files: dict | None = None, source: dict | None = None) -> dict:
    acc = _Acc()
    _collect(spec, acc)
    has_compressed = acc.dense["compressed"] + acc.dense["runtime_decompressed"] > 0
    if has_compressed:
        for g, op, consumers in acc.uncompressed_candidates:
            made_by_converter = bool(CONVERTER_DFT_NAME.match(op.name)) and all(c.type == "matmul" for c in consumers)
            f = _simple_finding(R.CONVERTER_CONSTANT if made_by_converter else R.UNCOMPRESSED_WEIGHT, op, g.name)
            f["chain"] = ["const"] + sorted({c.type for c in consumers})
            f["runtime_bytes"] = op.out.nbytes
            f["weight_shape"] = list(op.out.shape)
            acc.findings.append(f)
    dense_total = sum(acc.dense.values())
    summary = Counter(f["rule"] for f in acc.findings)
    fired = [R.RULES[r].as_dict() for r in sorted(summary)]
    return {
        "lint_version": LINT_VERSION,
        "source": source or {},
        "format": "+".join(sorted(acc.formats)),
        "specification_version": spec.specificationVersion,
        "ops": dict(sorted(acc.ops.items())),
        "op_count": sum(acc.ops.values()),
        "weights": dict(sorted((k, v) for k, v in acc.weights.items() if v)),
        "weights_dense": {k: acc.dense.get(k, 0) for k in ("compressed", "runtime_decompressed", "uncompressed")},
        "compressed_fraction": (acc.dense["compressed"] / dense_total) if dense_total else None,
        **runtime_memory(acc.findings, acc.dense, sum(acc.computed.values()), sum(acc.weights.values())),
        "weight_files": dict(weight_files or {}),
        "findings": acc.findings,
        "summary": dict(sorted(summary.items())),
        "rules": fired,
        "has_dynamic_weight": summary.get(R.DYNAMIC_WEIGHT.id, 0) > 0,
    }


def lint_path(path, *, limits=DEFAULT_LIMITS) -> dict:
    """Lint an .mlpackage folder, a zip of one, or a bare .mlmodel. Raises PackageError."""
    opened = open_model(path, limits)
    return lint_spec(
        opened.spec,
        weight_files=opened.weight_files,
        source={"path": os.fspath(path), "kind": opened.source, "weights_present": opened.weights_present},
    )
