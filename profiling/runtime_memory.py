"""Weight memory of a model at run time, from the lint's findings and dense byte counts (issue 16, item 3).

Stored bytes are what the package keeps on disk. At run time a weight takes memory as
* ``used_as_stored``: a float const the op reads as it is (fp16 weights);
* ``decompressed``: the dense output of a ``constexpr_*`` op (coremltools documents these as decompressed when the
  model loads; newer devices may decompress some just in time, so this is the upper bound);
* ``computed``: the output of run-time ops transforming a weight (``pow``, ``mul``, ...): a ``dynamic_weight``
  chain's copies, counted once per op even when several chains share it.
``runtime_bytes_total`` is their sum: the weight memory a prediction needs, which is what can run a device out of
memory. Chains are ranked by the bytes they materialise, per op and per pattern of op types.
"""
from __future__ import annotations

MAX_RANKED = 20
ARROW = " → "


def runtime_memory(findings: list, dense: dict, computed: int, stored: int) -> dict:
    decompressed = dense.get("compressed", 0) + dense.get("runtime_decompressed", 0)
    used_as_stored = dense.get("uncompressed", 0)
    chains = [f for f in findings if f["rule"] == "dynamic_weight" and f.get("runtime_bytes")]
    chains.sort(key=lambda f: (-f["runtime_bytes"], f["op"]))
    patterns: dict[str, dict] = {}
    for f in chains:
        key = ARROW.join(f["chain"])
        row = patterns.setdefault(key, {"chain": f["chain"], "rule": f["rule"], "ops": 0, "runtime_bytes": 0})
        row["ops"] += 1
        row["runtime_bytes"] += f["runtime_bytes"]
    return {
        "runtime_bytes_total": used_as_stored + decompressed + computed,
        "runtime_weights": {
            "stored": stored,
            "used_as_stored": used_as_stored,
            "decompressed": decompressed,
            "computed": computed,
        },
        "runtime_chains": [
            {"op": f["op"], "rule": f["rule"], "chain": f["chain"], "runtime_bytes": f["runtime_bytes"]}
            for f in chains[:MAX_RANKED]
        ],
        "runtime_chain_patterns": sorted(patterns.values(), key=lambda r: -r["runtime_bytes"]),
    }
