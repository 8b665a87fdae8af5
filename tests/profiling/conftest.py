"""Session-scoped Core ML test models, built with torch + coremltools (no downloads).

All models are tiny: the machine is shared and each conversion costs about a second.
"""
from __future__ import annotations

import os
import shutil

import pytest

ZOO_SEED = 0


def _torch():
    import torch

    torch.manual_seed(ZOO_SEED)
    return torch


def _nets():
    import torch
    from torch import nn
    from torch.nn.utils import parametrize

    class SquaredConv2d(nn.Conv2d):
        """The users' pattern: the conv squares its own weight in forward."""

        def _conv_forward(self, x, weight, bias):
            return super()._conv_forward(x, weight.pow(2), bias)

    class Square(nn.Module):
        def forward(self, w):
            return w.pow(2)

    class Net(nn.Module):
        def __init__(self, conv=nn.Conv2d, widths=(3, 16, 32, 32), kernel=3, head=10):
            super().__init__()
            self.convs = nn.ModuleList(
                conv(a, b, kernel, padding=kernel // 2) for a, b in zip(widths[:-1], widths[1:])
            )
            self.fc = nn.Linear(widths[-1], head)

        def forward(self, x):
            for c in self.convs:
                x = torch.relu(c(x))
            return self.fc(x.mean((2, 3)))

    def baked_copy(sq_net):
        """Same function as sq_net, with w**2 folded into plain Conv2d weights via parametrize."""
        net = Net()
        net.load_state_dict(sq_net.state_dict())
        for conv in net.convs:
            parametrize.register_parametrization(conv, "weight", Square())
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
        return net.eval()

    return SquaredConv2d, Net, baked_copy


def _ptq_int8(model, scheme="symmetric", skip=()):
    from coremltools.optimize.torch.quantization import PostTrainingQuantizer, PostTrainingQuantizerConfig

    cfg = {"global_config": {"weight_dtype": "int8", "granularity": "per_channel", "quantization_scheme": scheme}}
    if skip:
        cfg["module_name_configs"] = {name: None for name in skip}
    return PostTrainingQuantizer(model, PostTrainingQuantizerConfig.from_dict(cfg)).compress()


def _convert(torch_model, example, target="iOS17"):
    import torch

    from profiling.convert import convert_torch

    traced = torch.jit.trace(torch_model.eval(), example)
    return convert_torch(traced, [("x", tuple(example.shape))], minimum_deployment_target=target)


def _save(mlmodel, directory, name):
    path = os.path.join(directory, name + ".mlpackage")
    mlmodel.save(path)
    return path


class Zoo:
    """Lazily built models; each is converted once per test session."""

    def __init__(self, root):
        self.root = str(root)
        self._cache = {}
        torch = _torch()
        self.SquaredConv2d, self.Net, self.baked_copy = _nets()
        self.example = torch.rand(1, 3, 16, 16)
        self.sq_net = self.Net(conv=self.SquaredConv2d).eval()

    def _once(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def sq_int8(self):
        """Squared-weight convs + torch-side int8 PTQ: pow survives as constexpr -> pow -> conv."""
        return self._once("sq_int8", lambda: _save(_convert(_ptq_int8(self.sq_net), self.example), self.root, "sq_int8"))

    @property
    def sq_int8_ios18(self):
        """iOS18 opset: constexpr_blockwise_shift_scale with inline (not const-op) data inputs."""
        return self._once("sq_int8_ios18", lambda: _save(_convert(_ptq_int8(self.sq_net), self.example, target="iOS18"),
                                                           self.root, "sq_int8_ios18"))

    @property
    def sq_neuralnetwork(self):
        """The old NeuralNetwork format (weights inline in the spec), as a bare .mlmodel."""
        def build():
            import coremltools as ct
            import torch

            traced = torch.jit.trace(self.sq_net, self.example)
            model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=self.example.shape)],
                               convert_to="neuralnetwork")
            path = os.path.join(self.root, "sq_nn.mlmodel")
            model.save(path)
            return path

        return self._once("sq_neuralnetwork", build)

    @property
    def sq_fp16_model(self):
        return self._once("sq_fp16_model", lambda: _convert(self.sq_net, self.example))

    @property
    def sq_fp16(self):
        return self._once("sq_fp16", lambda: _save(self.sq_fp16_model, self.root, "sq_fp16"))

    @property
    def sq_fp16_then_int8(self):
        """The first fix: convert to fp16 (pow folds), then quantize with coremltools.optimize.coreml."""
        from profiling.compress import quantize_int8

        return self._once("sq_fp16_then_int8", lambda: _save(quantize_int8(self.sq_fp16_model), self.root, "sq_fp16_then_int8"))

    @property
    def baked_int8(self):
        """The second fix: bake w**2 into plain convs (parametrize), then the same torch-side PTQ."""
        def build():
            baked = self.baked_copy(self.sq_net)
            return _save(_convert(_ptq_int8(baked, scheme="affine"), self.example), self.root, "baked_int8")

        return self._once("baked_int8", build)

    @property
    def plain_fp16_model(self):
        def build():
            torch = _torch()
            # 5x5 first conv: above coremltools' 2048-element threshold, so every conv compresses.
            net = self.Net(widths=(3, 32, 64, 64), kernel=5).eval()
            return _convert(net, torch.rand(1, 3, 16, 16))

        return self._once("plain_fp16_model", build)

    @property
    def plain_int8(self):
        from profiling.compress import quantize_int8

        return self._once("plain_int8", lambda: _save(quantize_int8(self.plain_fp16_model), self.root, "plain_int8"))

    @property
    def skipped_int8(self):
        """Plain net whose last conv the torch-side quantizer skips (module_name_configs=None)."""
        def build():
            torch = _torch()
            net = self.Net(widths=(3, 32, 64, 64), kernel=3).eval()
            return _save(_convert(_ptq_int8(net, skip=("convs.2",)), torch.rand(1, 3, 16, 16)), self.root, "skipped_int8")

        return self._once("skipped_int8", build)


PROBLEM3_SIDE = 64  # a multiple of 32 (their model halves the side five times)
PROBLEM3_BLOCKS = (1, 1, 1, 1, 1, 1, 1)  # one block of each kind; theirs is (5, 5, 5, 10, 2, 2, 2)


@pytest.fixture(scope="session")
def problem3(tmp_path_factory):
    """Their model (random weights) converted in fp16, and through their int8 path: torch-side PTQ, trace, convert."""
    import torch

    from profiling.convert import convert_torch
    from tests.profiling.problem3 import CustomConv2d, Problem3Model, traced, users_int8

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("problem3")
    model = Problem3Model(PROBLEM3_BLOCKS).eval()
    convs = sum(isinstance(m, CustomConv2d) for m in model.modules())
    shape = [("x", (1, 3, PROBLEM3_SIDE, PROBLEM3_SIDE))]
    fp16 = convert_torch(traced(model, PROBLEM3_SIDE), shape)  # before quantizing: the same weights
    int8 = convert_torch(traced(users_int8(model), PROBLEM3_SIDE), shape)
    paths = {"fp16": str(root / "problem3_fp16.mlpackage"), "int8": str(root / "problem3_int8.mlpackage")}
    fp16.save(paths["fp16"])
    int8.save(paths["int8"])
    return {"paths": paths, "convs": convs}


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    return Zoo(tmp_path_factory.mktemp("zoo"))


def spec_only_copy(package_dir, dest_dir):
    """Copy of a package with weights/ removed, as users share it."""
    dest = os.path.join(dest_dir, os.path.basename(package_dir))
    shutil.copytree(package_dir, dest)
    shutil.rmtree(os.path.join(dest, "Data", "com.apple.CoreML", "weights"))
    return dest


def bare_mlmodel_copy(package_dir, dest_dir, name="model.mlmodel"):
    dest = os.path.join(dest_dir, name)
    shutil.copy(os.path.join(package_dir, "Data", "com.apple.CoreML", "model.mlmodel"), dest)
    return dest


def zip_dir(src_dir, zip_path, top=None, extra=()):
    """Zip a package folder under a top folder name (as Finder does), plus extra (name, bytes)."""
    import zipfile

    top = top if top is not None else os.path.basename(src_dir)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _dirs, files in os.walk(src_dir):
            for f in files:
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, src_dir).replace(os.sep, "/")
                zf.write(full, f"{top}/{rel}" if top else rel)
        for name, data in extra:
            zf.writestr(name, data)
    return zip_path


@pytest.fixture
def helpers():
    class H:
        spec_only_copy = staticmethod(spec_only_copy)
        bare_mlmodel_copy = staticmethod(bare_mlmodel_copy)
        zip_dir = staticmethod(zip_dir)

    return H
