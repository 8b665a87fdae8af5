"""Profiling benchmark: conversion, quantization and lint times.

    .venv/bin/python -m benchmarks.profiling [--palettize] [--skip-large]
    .venv/bin/python -m benchmarks.profiling --zoo [--models resnet18,problem3,...]

* ``--zoo`` (issue 16): the models of benchmarks.model_zoo (torchvision- and timm-shaped, random weights, and the
  users' problem-3 model), each in its own process: torch -> Core ML fp16 conversion, coremltools int8
  quantization, lint times, the process's peak memory, findings, and whether the lint got them right; for problem-3
  also the users' own int8 path (torch-side PTQ, trace, convert) and the fix (fp16 -> int8_asymmetric).

* ~5M-parameter conv net: torch -> Core ML (fp16) conversion, int8 quantization
  with coremltools.optimize.coreml (optionally 4-bit palettization), lint of each.
* ~100M-parameter ML program of random fp16 weights, built with the MIL builder:
  lint time with and without weight.bin, and bytes the lint process read, to show
  the lint never touches weights. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings


def _rchar() -> int | None:
    """Bytes this process has read so far (Linux /proc), or None elsewhere."""
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _du(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _lint_timed(path: str, repeat: int = 3):
    from profiling.lint import lint_path

    best, report = float("inf"), None
    before = _rchar()
    for _ in range(repeat):
        report, dt = _timed(lint_path, path)
        best = min(best, dt)
    after = _rchar()
    read = None if before is None or after is None else (after - before) // repeat
    return report, best, read


def medium(workdir: str, palettize: bool) -> None:
    import torch
    from torch import nn

    from profiling.compress import compress
    from profiling.convert import convert_torch

    torch.manual_seed(0)
    widths = (3, 64, 128, 256, 256, 512, 512)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(512, 1000)).eval()
    params = sum(p.numel() for p in net.parameters())
    example = torch.rand(1, 3, 64, 64)
    traced = torch.jit.trace(net, example)

    print(f"== ~5M model: {params / 1e6:.2f}M parameters")
    fp16, dt = _timed(convert_torch, traced, [("x", tuple(example.shape))], minimum_deployment_target="iOS17")
    print(f"convert torch -> mlprogram fp16: {dt:7.2f} s")
    variants = {"fp16": fp16}
    q, dt = _timed(compress, fp16, "int8")
    print(f"int8 linear quantization:        {dt:7.2f} s")
    variants["int8"] = q
    if palettize:
        p, dt = _timed(compress, fp16, "palettize4")
        print(f"4-bit palettization (k-means):   {dt:7.2f} s")
        variants["palettize4"] = p
    for name, model in variants.items():
        path = os.path.join(workdir, f"medium_{name}.mlpackage")
        model.save(path)
        report, dt, read = _lint_timed(path)
        print(f"lint {name:<10} {dt * 1000:8.1f} ms  package {_du(path) / 1e6:7.1f} MB  "
              f"compressed_fraction {report['compressed_fraction']:.3f}  findings {len(report['findings'])}")


def large(workdir: str) -> None:
    import numpy as np
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    dim, layers = 4096, 6  # 6 x 4096 x 4096 = 100.7M parameters
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((dim, dim), dtype=np.float32).astype(np.float16) for _ in range(layers)]

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, dim), dtype=ct.converters.mil.mil.types.fp16)],
                opset_version=ct.target.iOS17)
    def prog(x):
        for w in weights:
            x = mb.relu(x=mb.linear(x=x, weight=w))
        return x

    print(f"== ~100M model: {layers * dim * dim / 1e6:.1f}M random fp16 parameters (MIL builder)")
    model, dt = _timed(ct.convert, prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                       compute_precision=ct.precision.FLOAT16)
    print(f"build + convert:                 {dt:7.2f} s")
    path = os.path.join(workdir, "large.mlpackage")
    _, dt = _timed(model.save, path)
    del model, weights
    weight_bin = os.path.join(path, "Data", "com.apple.CoreML", "weights", "weight.bin")
    print(f"save:                            {dt:7.2f} s  weight.bin {os.path.getsize(weight_bin) / 1e6:.1f} MB")
    report, dt, read = _lint_timed(path)
    print(f"lint with weight.bin:    {dt * 1000:8.1f} ms  bytes read per lint: {read}  "
          f"fp16 weights counted {report['weights'].get('fp16_const', 0) / 1e6:.1f} MB")
    os.remove(weight_bin)
    report, dt, read = _lint_timed(path)
    print(f"lint without weight.bin: {dt * 1000:8.1f} ms  bytes read per lint: {read}  "
          f"ops {report['op_count']}")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _zoo_row(name: str) -> dict:
    """One model, measured in this process (run by _zoo in a fresh one, so the peak memory is the model's)."""
    import torch

    from benchmarks.model_zoo import MODELS
    from profiling.compress import compress
    from profiling.convert import convert_torch
    from profiling.lint import lint_spec

    torch.manual_seed(0)
    net, side = MODELS[name]()
    net = net.eval()
    row = {"model": name, "params_m": sum(p.numel() for p in net.parameters()) / 1e6, "side": side}
    example = torch.rand(1, 3, side, side)
    shape = [("x", (1, 3, side, side))]
    with torch.no_grad():
        traced = torch.jit.trace(net, example)
    fp16, row["convert_s"] = _timed(convert_torch, traced, shape)
    int8, row["quantize_s"] = _timed(compress, fp16, "int8")
    fp16_lint, row["lint_fp16_ms"] = _timed(lint_spec, fp16.get_spec())
    int8_lint, row["lint_int8_ms"] = _timed(lint_spec, int8.get_spec())
    row["lint_fp16_ms"] *= 1000
    row["lint_int8_ms"] *= 1000
    row["findings_int8"] = int8_lint["summary"]
    row["compressed_fraction_int8"] = int8_lint["compressed_fraction"]
    row["runtime_mb"] = {"fp16": fp16_lint["runtime_bytes_total"] / 1e6, "int8": int8_lint["runtime_bytes_total"] / 1e6}
    correct = not fp16_lint["has_dynamic_weight"] and not int8_lint["has_dynamic_weight"] and (
        int8_lint["compressed_fraction"] or 0) > 0.9
    if name == "problem3":
        from tests.profiling.problem3 import CustomConv2d, traced as trace_side, users_int8

        convs = sum(isinstance(m, CustomConv2d) for m in net.modules())
        users, row["users_int8_s"] = _timed(lambda: convert_torch(trace_side(users_int8(net), side), shape))
        users_lint = lint_spec(users.get_spec())
        chains = [f for f in users_lint["findings"] if f["rule"] == "dynamic_weight"]
        fixed = lint_spec(compress(fp16, "int8_asymmetric").get_spec())
        row["findings_users_int8"] = users_lint["summary"]
        row["runtime_mb"].update(users_int8=users_lint["runtime_bytes_total"] / 1e6,
                                 users_int8_stored=users_lint["runtime_weights"]["stored"] / 1e6,
                                 fix=fixed["runtime_bytes_total"] / 1e6)
        correct = correct and len(chains) == convs and all(
            f["chain"] == ["constexpr_affine_dequantize", "pow", "conv"] for f in chains) and not fixed["has_dynamic_weight"]
    row["correct"] = correct
    row["peak_rss_mb"] = _peak_rss_mb()
    return row


def _zoo(names) -> None:
    import json
    import subprocess
    import sys

    rows = []
    for name in names:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "benchmarks.profiling", "--zoo-one", name],
                              capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows.append({"model": name, "error": tail[:200]})
        else:
            rows.append(json.loads(lines[-1]))
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print("| model | params | input | convert fp16 s | int8 quantize s | lint fp16 / int8 ms | peak RSS MB "
          "| weight memory at run time MB | findings (int8) | correct |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | | | failed: {r['error']} | | | | | | no |")
            continue
        mem = ", ".join(f"{k} {v:.1f}" for k, v in r["runtime_mb"].items())
        findings = ", ".join(f"{k} {v}" for k, v in r["findings_int8"].items()) or "none"
        if "findings_users_int8" in r:
            findings += "; users' int8 (torch PTQ, " + f"{r['users_int8_s']:.1f} s): " + ", ".join(
                f"{k} {v}" for k, v in r["findings_users_int8"].items())
        print(f"| {r['model']} | {r['params_m']:.1f}M | {r['side']} | {r['convert_s']:.1f} | {r['quantize_s']:.1f} "
              f"| {r['lint_fp16_ms']:.0f} / {r['lint_int8_ms']:.0f} | {r['peak_rss_mb']:.0f} | {mem} | {findings} "
              f"| {'yes' if r['correct'] else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--palettize", action="store_true", help="also time 4-bit k-means palettization")
    parser.add_argument("--skip-large", action="store_true", help="skip the 100M-parameter lint")
    parser.add_argument("--zoo", action="store_true", help="the issue-16 model zoo table instead")
    parser.add_argument("--models", default="", help="comma-separated zoo models (default: all)")
    parser.add_argument("--zoo-one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.zoo_one:
        import json

        print(json.dumps(_zoo_row(args.zoo_one)))
        return
    if args.zoo:
        from benchmarks.model_zoo import MODELS

        _zoo([m for m in args.models.split(",") if m] or list(MODELS))
        return
    workdir = tempfile.mkdtemp(prefix="perfboard-bench-")
    try:
        from profiling.lint import lint_path  # noqa: F401 - time imports apart from the figures
        import coremltools  # noqa: F401

        medium(workdir, args.palettize)
        if not args.skip_large:
            large(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
