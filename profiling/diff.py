"""Side-by-side difference of two lint reports (e.g. fp16 vs int8 of the same model)."""
from __future__ import annotations

from collections import Counter


def _rows(a: dict, b: dict) -> list[dict]:
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, 0), b.get(key, 0)
        rows.append({"key": key, "a": va, "b": vb, "delta": vb - va})
    return rows


def _finding_key(f: dict) -> tuple:
    return (f["rule"], f["op"])


def diff_lints(a: dict, b: dict) -> dict:
    """What changed from report a to report b: op counts, storage, compression, findings."""
    fa = {_finding_key(f): f for f in a.get("findings", [])}
    fb = {_finding_key(f): f for f in b.get("findings", [])}
    rules_a = Counter(f["rule"] for f in fa.values())
    rules_b = Counter(f["rule"] for f in fb.values())
    return {
        "ops": [r for r in _rows(a.get("ops", {}), b.get("ops", {}))],
        "ops_changed": [r for r in _rows(a.get("ops", {}), b.get("ops", {})) if r["delta"]],
        "weights": _rows(a.get("weights", {}), b.get("weights", {})),
        "weight_bytes": {"a": sum(a.get("weights", {}).values()), "b": sum(b.get("weights", {}).values())},
        "compressed_fraction": {"a": a.get("compressed_fraction"), "b": b.get("compressed_fraction")},
        "runtime_bytes_total": {"a": a.get("runtime_bytes_total"), "b": b.get("runtime_bytes_total")},
        "runtime_weights": _rows(a.get("runtime_weights", {}), b.get("runtime_weights", {})),
        "runtime_chain_patterns": {"a": a.get("runtime_chain_patterns", []), "b": b.get("runtime_chain_patterns", [])},
        "findings_by_rule": _rows(dict(rules_a), dict(rules_b)),
        "only_in_a": [fa[k] for k in fa if k not in fb],
        "only_in_b": [fb[k] for k in fb if k not in fa],
        "in_both": len(set(fa) & set(fb)),
        "has_dynamic_weight": {"a": a.get("has_dynamic_weight", False), "b": b.get("has_dynamic_weight", False)},
    }
