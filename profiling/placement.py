"""Op placement from device compute plans (runs' ComputePlanEntry rows), linked to lint findings."""
from __future__ import annotations

from collections import defaultdict

DEVICES = ("neural_engine", "gpu", "cpu")


def placement_summary(entries, lint_reports=()) -> list[dict]:
    """Per (device, compute units): share of ops and of estimated cost per device, and the ops
    that leave the Neural Engine, each with the lint finding for the same op when there is one.

    entries: iterable of dicts with device_name, compute_units, op, op_type, device, estimated_cost.
    """
    findings = {}
    for report in lint_reports:
        for f in (report or {}).get("findings", []):
            for name in [f["op"], *f.get("chain_ops", [])]:  # the consumer and each op of its chain (pow, ...)
                findings.setdefault(name, f)
    groups = defaultdict(list)
    for e in entries:
        groups[(e["device_name"], e["compute_units"])].append(e)
    out = []
    for (device_name, units), rows in sorted(groups.items()):
        n = len(rows)
        cost_total = sum(r["estimated_cost"] or 0 for r in rows)
        share = {d: sum(1 for r in rows if r["device"] == d) / n for d in DEVICES}
        cost_share = {
            d: (sum(r["estimated_cost"] or 0 for r in rows if r["device"] == d) / cost_total) if cost_total else None
            for d in DEVICES
        }
        off_ane = [
            {**{k: r[k] for k in ("op", "op_type", "device", "estimated_cost")}, "finding": findings.get(r["op"])}
            for r in rows
            if r["device"] != "neural_engine"
        ]
        off_ane.sort(key=lambda r: -(r["estimated_cost"] or 0))
        out.append({"device": device_name, "compute_units": units, "ops": n, "op_share": share,
                    "cost_share": cost_share, "off_neural_engine": off_ane})
    return out
