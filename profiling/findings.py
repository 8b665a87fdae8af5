"""Findings of a lint report grouped by rule for pages: one row per rule with its count, advice once, the chains
under it (issue 16, item 5)."""
from __future__ import annotations

from collections import Counter

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def group_findings(lint: dict | None) -> list[dict]:
    """[{rule, title, severity, evidence, count, runtime_bytes, advice: [distinct texts], snippet, chains:
    [{chain, count}], findings}] ordered by severity, then count."""
    if not lint:
        return []
    rules = {r["id"]: r for r in lint.get("rules", [])}
    groups: dict[str, dict] = {}
    for f in lint.get("findings", []):
        g = groups.get(f["rule"])
        if g is None:
            rule = rules.get(f["rule"], {})
            g = groups[f["rule"]] = {
                "rule": f["rule"], "title": rule.get("title", ""), "severity": f.get("severity", ""),
                "sources": rule.get("sources", []), "count": 0, "runtime_bytes": 0, "advice": [],
                "snippet": "", "patterns": Counter(), "findings": [],
            }
        g["count"] += 1
        g["runtime_bytes"] += f.get("runtime_bytes") or 0
        if f["advice"] not in g["advice"]:
            g["advice"].append(f["advice"])
        g["snippet"] = g["snippet"] or f.get("snippet", "")
        g["patterns"][tuple(f["chain"])] += 1
        g["findings"].append(f)
    out = []
    for g in groups.values():
        g["chains"] = [{"chain": list(chain), "count": n} for chain, n in g.pop("patterns").most_common()]
        out.append(g)
    out.sort(key=lambda g: (SEVERITY_ORDER.get(g["severity"], 9), -g["count"], g["rule"]))
    return out
