"""Refuse torch archives that could run code when torch loads them.

A TorchScript file and a torch.export archive (.pt2) are zips holding pickles, and a
.pt2 also holds a JSON graph whose strings torch turns into Python objects (operator
targets resolved with getattr from ``torch``, symbolic shapes parsed by ``sympy.sympify``,
which evaluates them). Nothing in an uploaded archive is ever executed to decide whether
it is safe: every pickle is read opcode by opcode (``pickletools.genops``) and may only
name globals from a small allow-list (tensors, storages, plain containers), every graph
target must be a ``torch.ops`` operator (or a plain ``_operator``/``math`` function), every
shape expression must match a small grammar, and pickled custom or opaque objects are
refused outright. Nested zips (a .pt2 keeps ``torch.save`` archives inside) are checked
the same way. See docs/security.md ("Uploaded models").
"""
from __future__ import annotations

import io
import json
import os
import pickletools
import posixpath
import re
import zipfile

from .errors import ModelInputError, UploadRejected
from .ziputil import DEFAULT_LIMITS, Limits, inspect_zip, open_zip, read_entry


class UnsafeModel(ModelInputError):
    """A torch archive was refused because loading it could run code; the message says where and why."""


ZIP_HEADER = b"PK\x03\x04"
MAX_NESTING = 3
MAX_EXPR_CHARS = 2000

_STORAGES = (
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage",
    "UntypedStorage",
)
_DTYPES = (
    "float16", "float32", "float64", "bfloat16", "half", "float", "double", "int8", "int16", "int32", "int64",
    "uint8", "bool", "complex64", "complex128", "long", "int", "short",
)
# Globals a pickle inside a torch archive may name: what torch.save writes for tensors,
# parameters and plain containers. Everything else (builtins.eval, os.system, any class) is refused.
TENSOR_GLOBALS = frozenset(
    {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.device",
    }
    | {f"torch.{s}" for s in _STORAGES}
    | {f"torch.{d}" for d in _DTYPES}
)
# TorchScript's own pickles (data.pkl, constants.pkl, *.debug_pkl) are read by its C++
# unpickler, which also knows these helpers; __torch__.* names are TorchScript classes
# compiled from the archive's code/ folder, not Python imports.
TORCHSCRIPT_GLOBALS = TENSOR_GLOBALS | {
    f"torch.jit._pickle.{n}"
    for n in ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
              "build_tensor_from_id", "restore_type_tag")
}
_TORCHSCRIPT_CLASS = re.compile(r"__torch__(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")

_STRING_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # what pickle's fix_imports maps them to
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})


def pickle_globals(data: bytes) -> list[str]:
    """Every global a pickle names, without executing it ("module.name").

    STACK_GLOBAL takes its names from the stack; they are followed through string pushes
    and the memo, and anything that cannot be followed is reported as "<unknown>" so that
    the caller refuses it. Reading stops at STOP or at the first byte that is not an
    opcode (pickle.loads would stop there too, after running what came before).
    """
    found: list[str] = []
    memo: dict[int, object] = {}
    recent: list[object] = []  # values of the pushes since the last other opcode (None: not a string)
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.append(f"{_PY2_MODULES.get(module, module)}.{attr}")
                recent = [None]
            elif name == "STACK_GLOBAL":
                if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                    found.append(f"{recent[-2]}.{recent[-1]}")
                else:
                    found.append("<unknown>")
                recent = [None]
            elif name in _EXT_OPS:
                found.append(f"<copyreg extension {arg}>")
                recent = [None]
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else arg.decode("latin-1") if isinstance(arg, bytes) else None)
            elif name in _GET_OPS:
                recent.append(memo.get(arg))
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in _PUT_OPS:
                memo[arg] = recent[-1] if recent else None
            elif name == "STOP":
                break
            else:
                recent = []
    except Exception:  # noqa: BLE001 - not (or no longer) a pickle: nothing after this point would run
        pass
    return found


def _check_pickle(label: str, data: bytes, allowed: frozenset, torchscript: bool) -> None:
    for ref in pickle_globals(data):
        if ref in allowed or (torchscript and _TORCHSCRIPT_CLASS.match(ref)):
            continue
        raise UnsafeModel(
            f"refused to load the model: pickle {label!r} references {ref}, which could run code when loaded; "
            "only tensors and plain containers are allowed"
        )


# --- the .pt2 JSON graph ------------------------------------------------------------------

_OPERATOR_FUNCS = frozenset(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor not_ invert "
    "lshift rshift".split()
)
_MATH_FUNCS = frozenset("ceil floor trunc sqrt exp log log2 log10 sin cos tan".split())
_SYM_TARGET = re.compile(r"torch\.(sym_(float|int|ite|max|min|not|sqrt|sum)|_sym_[a-z0-9]+)\Z")  # symbolic-shape helpers
_OP_TARGET = re.compile(r"torch\.ops\.[A-Za-z][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_EXPR_NAMES = frozenset(
    """FloorDiv ModularIndexing Where PythonMod Mod CleanDiv CeilToInt FloorToInt CeilDiv IntTrueDiv FloatTrueDiv
    LShift RShift IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat
    FloatPow PowByNatural Identity Max Min Abs Eq Ne Lt Le Gt Ge And Or Not Xor Symbol Integer Float Rational
    Add Mul Pow floor ceiling Piecewise ITE True False true false oo zoo nan""".split()
)
_EXPR_TOKEN = re.compile(
    r"""\s+|(?P<kw>[a-z][a-z_]*)=(?!=)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|'(?P<str>[A-Za-z][A-Za-z0-9_]*)'"""
    r"""|\d+(\.\d*)?([eE][+-]?\d+)?|\*\*|//|<=|>=|==|!=|[-+*/%(),<>&|~]"""
)
_SYMBOL_NAME = re.compile(r"[a-z]{1,4}\d+\Z")


def check_expr(expr: str) -> str | None:
    """None if a symbolic shape expression is plain arithmetic on symbols, else why not."""
    if len(expr) > MAX_EXPR_CHARS:
        return f"it is longer than {MAX_EXPR_CHARS} characters"
    pos = 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            return f"of {expr[pos:pos + 20]!r}"
        name = m.group("name")
        if name and name not in _EXPR_NAMES and not _SYMBOL_NAME.match(name) and not name.startswith(
            ("OpaqueUnaryFn_", "BitwiseFn_")
        ):
            return f"of the name {name!r}"
        if name and "__" in name:
            return f"of the name {name!r}"
        pos = m.end()
    return None


def check_target(target: str) -> str | None:
    """None if a graph node target is an operator torch.export can legitimately name, else why not."""
    if target.startswith("torch."):
        if (_OP_TARGET.match(target) or _SYM_TARGET.match(target)) and "__" not in target:
            return None
    elif target.startswith("_operator."):
        if target.split(".", 1)[1] in _OPERATOR_FUNCS:
            return None
    elif target.startswith("math."):
        if target.split(".", 1)[1] in _MATH_FUNCS:
            return None
    return "it is not a torch.ops operator"


def _walk_graph_json(label: str, node) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str):
                    why = None
                    if key == "target":
                        why = check_target(value)
                        kind = "calls"
                    elif key == "expr_str":
                        why = check_expr(value)
                        kind = "has the shape expression"
                    if why:
                        shown = value if len(value) <= 120 else value[:117] + "..."
                        raise UnsafeModel(
                            f"refused to load the model: graph {label!r} {kind} {shown!r}, which could run code "
                            f"when loaded ({why})"
                        )
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _check_payload_config(label: str, data: bytes) -> set[str]:
    """Names of the payload files a .pt2 weights/constants config loads with pickle."""
    try:
        config = json.loads(data).get("config", {})
    except (ValueError, AttributeError):
        raise UnsafeModel(f"refused to load the model: {label!r} is not a valid payload configuration") from None
    pickled = set()
    for fqn, meta in (config.items() if isinstance(config, dict) else []):
        path_name = str((meta or {}).get("path_name", "")) if isinstance(meta, dict) else ""
        if path_name.startswith(("custom_obj", "opaque_obj")):
            raise UnsafeModel(
                f"refused to load the model: {label!r} stores {fqn!r} as a pickled Python object ({path_name}), "
                "which could run code when loaded; only tensors are allowed"
            )
        if isinstance(meta, dict) and meta.get("use_pickle"):
            pickled.add(path_name)
    return pickled


# --- archives -----------------------------------------------------------------------------


def check_torch_file(path: str | os.PathLike, kind: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise UnsafeModel unless loading the TorchScript file / .pt2 archive at path cannot run code."""
    with open_zip(path) as zf:
        _check_zip(zf, kind, os.path.basename(os.fspath(path)), limits, depth=0)


def _check_zip(zf: zipfile.ZipFile, kind: str, label: str, limits: Limits, depth: int) -> None:
    try:
        infos = inspect_zip(zf, limits)
    except UploadRejected as exc:
        raise UnsafeModel(f"refused to load the model: {label!r}: {exc}") from None
    torchscript = kind == "torchscript" and depth == 0
    allowed = TORCHSCRIPT_GLOBALS if torchscript else TENSOR_GLOBALS
    files = [info for info in infos if not info.is_dir()]
    export_root = kind == "torch_export" and depth == 0
    pickled_payloads: set[str] = set()
    if export_root:
        for info in files:
            name, parts = info.filename, info.filename.split("/")
            if parts[-1].endswith("_config.json") and "data" in parts:
                data = read_entry(zf, info, limits.max_spec_bytes)
                pickled_payloads |= {posixpath.join(posixpath.dirname(name), p) for p in
                                     _check_payload_config(name, data)}
            elif "models" in parts and name.endswith(".json"):
                try:
                    graph = json.loads(read_entry(zf, info, limits.max_spec_bytes))
                except ValueError:
                    raise UnsafeModel(f"refused to load the model: graph {name!r} is not valid JSON") from None
                _walk_graph_json(name, graph)
    for info in files:
        name = info.filename
        member_label = f"{label}/{name}" if depth else name
        # Raw tensor bytes (most of an archive) are only peeked at, never held in memory whole.
        if _head(zf, info) == ZIP_HEADER:
            if depth + 1 > MAX_NESTING:
                raise UnsafeModel(f"refused to load the model: {member_label!r} nests zips too deeply")
            inner = open_zip(io.BytesIO(read_entry(zf, info, limits.max_uncompressed_bytes)))
            with inner:
                _check_zip(inner, kind, member_label, limits, depth + 1)
        elif export_root and (name in pickled_payloads or name.endswith(".pt")):
            # torch.export.load hands these to torch.load, and torch.save writes zips: a bare pickle
            # here would be the legacy format (several pickles and raw bytes), which is not accepted.
            raise UnsafeModel(
                f"refused to load the model: {member_label!r} is a pickle in the legacy torch.save format, "
                "which could run code when loaded; save the model again with torch.export.save"
            )
        elif name.endswith("pkl"):
            _check_pickle(member_label, read_entry(zf, info, limits.max_uncompressed_bytes), allowed, torchscript)


def _head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(info) as fh:
            return fh.read(len(ZIP_HEADER))
    except Exception as exc:  # noqa: BLE001 - CRC, zlib, unsupported method
        raise UnsafeModel(f"refused to load the model: corrupt zip entry {info.filename!r}: {exc}") from None
