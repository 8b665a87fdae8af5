"""Profiling benchmark: conversion, quantization and lint times.

    /work/venv/bin/python -m benchmarks.profiling [--palettize] [--skip-large]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--palettize", action="store_true", help="also time 4-bit k-means palettization")
    parser.add_argument("--skip-large", action="store_true", help="skip the 100M-parameter lint")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
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
