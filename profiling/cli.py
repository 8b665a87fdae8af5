"""perfboard-lint PATH [--json]: lint a Core ML model for CI.

Exit status: 0 clean (or only warnings), 1 a dynamic_weight finding, 2 unreadable input.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import ModelInputError


def _fmt_bytes(n) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render_text(report: dict, max_per_rule: int = 20) -> str:
    lines = []
    src = report.get("source", {})
    lines.append(f"{src.get('path', '?')}: {report['format']} (spec v{report['specification_version']}), "
                 f"{report['op_count']} ops, weight file {'present' if src.get('weights_present') else 'absent'}")
    frac = report["compressed_fraction"]
    lines.append("compressed fraction: " + ("n/a (no weights)" if frac is None else f"{frac:.1%}"))
    lines.append("weights by storage: " + ", ".join(f"{k} {_fmt_bytes(v)}" for k, v in report["weights"].items()))
    w = report.get("runtime_weights")
    if w:
        lines.append(f"weight memory at run time: {_fmt_bytes(report['runtime_bytes_total'])} (stored "
                     f"{_fmt_bytes(w['stored'])}; used as stored {_fmt_bytes(w['used_as_stored'])}, decompressed "
                     f"{_fmt_bytes(w['decompressed'])}, computed by run-time ops {_fmt_bytes(w['computed'])})")
        for c in report.get("runtime_chain_patterns", [])[:5]:
            lines.append(f"  {' -> '.join(c['chain'])} x{c['ops']}: {_fmt_bytes(c['runtime_bytes'])}")
    ops = sorted(((n, k) for k, n in report["ops"].items() if k != "const"), reverse=True)
    lines.append("ops: " + ", ".join(f"{k} x{n}" for n, k in ops))
    findings = report["findings"]
    if not findings:
        lines.append("no findings")
    by_rule: dict[str, list] = {}
    for f in findings:
        by_rule.setdefault(f["rule"], []).append(f)
    rules = {r["id"]: r for r in report.get("rules", [])}
    for rule_id, items in by_rule.items():
        rule = rules.get(rule_id, {})
        total = sum(f["runtime_bytes"] or 0 for f in items)
        lines.append("")
        lines.append(f"[{rule.get('severity', '?')}] {rule_id}: {rule.get('title', '')} - {len(items)} op(s)"
                     + (f", {_fmt_bytes(total)} materialised at run time" if total else ""))
        for f in items[:max_per_rule]:
            extra = f" ({_fmt_bytes(f['runtime_bytes'])})" if f.get("runtime_bytes") else ""
            lines.append(f"  {f['op']}: {' -> '.join(f['chain'])}{extra}")
        if len(items) > max_per_rule:
            lines.append(f"  ... {len(items) - max_per_rule} more")
        lines.append(f"  fix: {items[0]['advice']}")
        for s in rule.get("sources", []):
            lines.append(f"  source: {s['title']}" + (f" <{s['url']}>" if s.get("url") else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="perfboard-lint",
        description="Lint a Core ML model (.mlpackage folder, zip of one, or model.mlmodel) for ops "
        "whose weights are computed at run time and other Neural Engine blockers.",
    )
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    from .lint import lint_path  # after argparse so --help stays instant

    try:
        report = lint_path(args.path)
    except ModelInputError as exc:
        print(f"perfboard-lint: cannot read model: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a spec that parses but trips the lint is unreadable, not clean
        print(f"perfboard-lint: cannot lint model {args.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(report))
    return 1 if report["has_dynamic_weight"] else 0


if __name__ == "__main__":
    sys.exit(main())
