"""A read-only view of an ML program (MIL) spec: ops, producers, consumers and tensor sizes.

Sizes come from the declared tensor types (shape x dtype width), never from weight.bin.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import _proto

# Bits per element by MIL DataType name. Sub-byte types are packed in weight.bin.
DTYPE_BITS = {
    "BOOL": 8, "FLOAT8E4M3FN": 8, "FLOAT8E5M2": 8, "FLOAT16": 16, "BFLOAT16": 16,
    "FLOAT32": 32, "FLOAT64": 64, "INT4": 4, "INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64,
    "UINT1": 1, "UINT2": 2, "UINT3": 3, "UINT4": 4, "UINT6": 6, "UINT8": 8, "UINT16": 16,
    "UINT32": 32, "UINT64": 64,
}
FLOAT_DTYPES = {"FLOAT16", "BFLOAT16", "FLOAT32", "FLOAT64"}
SHORT_DTYPE = {"FLOAT16": "fp16", "BFLOAT16": "bf16", "FLOAT32": "fp32", "FLOAT64": "fp64"}


def dtype_name(value) -> str:
    try:
        return _proto.mil_pb2().DataType.Name(value)
    except ValueError:
        return f"DTYPE_{value}"


@dataclass
class TensorInfo:
    dtype: str
    shape: tuple | None  # None when a dimension is not a compile-time constant

    @property
    def elements(self) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int | None:
        n = self.elements
        bits = DTYPE_BITS.get(self.dtype)
        if n is None or bits is None:
            return None
        return (n * bits + 7) // 8


def tensor_info(value_type) -> TensorInfo | None:
    """TensorInfo for a MIL ValueType, or None for non-tensors (lists, dicts, strings)."""
    kind = value_type.WhichOneof("type")
    if kind == "stateType":
        value_type = value_type.stateType.wrappedType
        kind = value_type.WhichOneof("type")
    if kind != "tensorType":
        return None
    tt = value_type.tensorType
    dtype = dtype_name(tt.dataType)
    if dtype == "STRING":
        return None
    shape = []
    for dim in tt.dimensions:
        if dim.WhichOneof("dimension") != "constant":
            return TensorInfo(dtype, None)
        shape.append(int(dim.constant.size))
    return TensorInfo(dtype, tuple(shape))


@dataclass
class Op:
    type: str
    name: str  # first output's name: what MLComputePlan and Xcode's reports show
    function: str
    proto: object = field(repr=False)
    inputs: dict = field(default_factory=dict)  # param -> [value names]
    outputs: list = field(default_factory=list)  # [(name, TensorInfo|None)]
    inline: dict = field(default_factory=dict)  # param -> [TensorInfo] of values given inline (iOS18 constexpr data)

    mil_name: str = ""  # the op's "name" attribute, which may differ from its output's name

    @property
    def is_const(self) -> bool:
        return self.type == "const"

    @property
    def is_constexpr(self) -> bool:
        return self.type.startswith("constexpr_")

    @property
    def out(self) -> TensorInfo | None:
        return self.outputs[0][1] if self.outputs else None


def _mil_name(op_proto) -> str:
    attr = op_proto.attributes.get("name")
    if attr is not None and attr.HasField("immediateValue"):
        strings = attr.immediateValue.tensor.strings.values
        if strings:
            return strings[0]
    return ""


def _op_name(op_proto) -> str:
    return op_proto.outputs[0].name if op_proto.outputs else (_mil_name(op_proto) or f"<{op_proto.type}>")


class FunctionGraph:
    """All ops of one MIL function (nested blocks included) with producer/consumer maps."""

    def __init__(self, name: str, fn_proto):
        self.name = name
        self.inputs = {i.name for i in fn_proto.inputs}
        self.ops: list[Op] = []
        self.producer: dict[str, Op] = {}
        self.consumers: dict[str, list[Op]] = {}
        blocks = fn_proto.block_specializations
        block = blocks[fn_proto.opset] if fn_proto.opset in blocks else next(iter(blocks.values()), None)
        if block is not None:
            self._add_block(block)

    def _add_block(self, block) -> None:
        for op_proto in block.operations:
            op = Op(op_proto.type, _op_name(op_proto), self.name, op_proto, mil_name=_mil_name(op_proto))
            for param, arg in op_proto.inputs.items():
                names = [b.name for b in arg.arguments if b.WhichOneof("binding") == "name"]
                op.inputs[param] = names
                values = [tensor_info(b.value.type) for b in arg.arguments if b.WhichOneof("binding") == "value"]
                if any(values):
                    op.inline[param] = [v for v in values if v is not None]
                for n in names:
                    self.consumers.setdefault(n, []).append(op)
            for out in op_proto.outputs:
                op.outputs.append((out.name, tensor_info(out.type)))
                self.producer[out.name] = op
            self.ops.append(op)
            for inner in op_proto.blocks:  # cond / while_loop bodies
                self.inputs.update(i.name for i in inner.inputs)
                self._add_block(inner)

    def is_constant(self, name: str) -> bool:
        """True when the value is computed from constants only (no function input reaches it)."""
        memo = self.__dict__.setdefault("_constant_memo", {})
        expanded = set()
        stack = [name]
        while stack:  # iterative post-order: graphs can be deeper than Python's recursion limit
            cur = stack[-1]
            if cur in memo:
                stack.pop()
                continue
            op = self.producer.get(cur)
            if op is None or op.proto.blocks:  # function input, or control flow: run-time
                memo[cur] = False
            elif op.is_const or op.is_constexpr:
                memo[cur] = True
            else:
                inputs = [n for names in op.inputs.values() for n in names]
                pending = [n for n in inputs if n not in memo]
                if pending and cur not in expanded:
                    expanded.add(cur)
                    stack.extend(pending)
                    continue
                # pending after expansion only happens on a cycle: not constant
                memo[cur] = not pending and all(memo[n] for n in inputs)
            stack.pop()
        return memo[name]

    def value_info(self, name: str) -> TensorInfo | None:
        op = self.producer.get(name)
        if op is None:
            return None
        for out_name, info in op.outputs:
            if out_name == name:
                return info
        return None

    def _immediate(self, name: str):
        """(tensor, value kind, its type) of a small immediate const, else None."""
        op = self.producer.get(name)
        if op is None or not op.is_const:
            return None
        val = op.proto.attributes.get("val")
        if val is None or not val.HasField("immediateValue"):
            return None
        tensor = val.immediateValue.tensor
        return tensor, tensor.WhichOneof("value"), val.type

    def const_ints(self, name: str) -> list[int] | None:
        """Integer values of a small immediate const (e.g. conv dilations), else None."""
        found = self._immediate(name)
        if found is None:
            return None
        tensor, kind, _ = found
        if kind in ("ints", "longInts"):
            return list(getattr(tensor, kind).values)
        return None

    def const_floats(self, name: str) -> list[float] | None:
        """Float values of a small immediate const (e.g. pow's exponent), else None."""
        found = self._immediate(name)
        if found is None:
            return None
        tensor, kind, value_type = found
        if kind in ("floats", "doubles", "ints"):
            return [float(v) for v in getattr(tensor, kind).values]
        if kind == "bytes" and tensor_info(value_type) is not None and tensor_info(value_type).dtype == "FLOAT16":
            raw = bytes(tensor.bytes.values)
            return [v for (v,) in struct.iter_unpack("<e", raw[: len(raw) // 2 * 2])]
        return None


def functions(program) -> list[FunctionGraph]:
    return [FunctionGraph(name, fn) for name, fn in sorted(program.functions.items())]
