"""Uploaded torch archives are programs: a .pt2 or TorchScript file whose pickles (or .pt2 graph)
could run code is refused by the job with the reason, and nothing in it runs. Legit archives still convert."""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from collector.models import Project
from profiling import torchsafe
from profiling.convert import ConversionError, load_torch
from profiling.jobs import create_job
from profiling.models import ProfilingJob
from profiling.torchsafe import UnsafeModel, check_torch_file, pickle_globals

COMMAND = "__import__('os').system('id > marker')"


class Payload:
    """Runs COMMAND (writes ./marker) when unpickled."""

    def __reduce__(self):
        return (eval, (COMMAND,))


def _rewrite(src, dst, member, data):
    """Copy zip src to dst with member's bytes replaced (added if absent)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        names = zin.namelist()
        for info in zin.infolist():
            zout.writestr(info, data if info.filename == member else zin.read(info))
        if member not in names:
            zout.writestr(member, data)
    return dst


def _member(path, suffix):
    return next(n for n in zipfile.ZipFile(path).namelist() if n.endswith(suffix))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny Linear as .pt2 and TorchScript, and the hostile copies of both."""
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("torchsafety")
    net = torch.nn.Linear(4, 2).eval()
    x = torch.rand(1, 4)
    torch.export.save(torch.export.export(net, (x,)), d / "linear.pt2")
    torch.jit.save(torch.jit.trace(net, x), d / "linear.pt")
    buf = io.BytesIO()
    torch.save(Payload(), buf)  # the torch.save archive torch.export.load reads as sample inputs
    _rewrite(d / "linear.pt2", d / "hostile.pt2", _member(d / "linear.pt2", "/data/sample_inputs/model.pt"),
             buf.getvalue())
    _rewrite(d / "linear.pt", d / "hostile.pt", _member(d / "linear.pt", "/data.pkl"),
             pickle.dumps(Payload(), protocol=2))
    return d


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The payload writes ./marker: run with a fresh working directory and look there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture(autouse=True)
def forced_weights_only_is_restored(monkeypatch):
    # load_torch sets TORCH_FORCE_WEIGHTS_ONLY_LOAD for the process; setenv makes monkeypatch put back
    # the value from before the test (or its absence) so it does not leak into other tests.
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0"))


def test_the_payload_is_live(models, workdir, monkeypatch):
    """Guard: unpickled without protection the payload does run, so the tests below prove something."""
    import torch

    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0")  # an earlier load_torch in this process set it

    inner = zipfile.ZipFile(models / "hostile.pt2").read(_member(models / "hostile.pt2", "/data/sample_inputs/model.pt"))
    torch.load(io.BytesIO(inner), weights_only=False)
    assert (workdir / "marker").exists()


# --- through the real job path -----------------------------------------------------------


@pytest.fixture(autouse=True)
def jobs_run_in_process(monkeypatch):
    from profiling import jobs

    monkeypatch.setattr(jobs, "enqueue_job", lambda job: jobs.run_job(job.pk))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def acme(db):
    return Project.objects.create(slug="acme-safety", name="Acme safety")


def _job(project, path, name, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        with open(path, "rb") as fh:
            job = create_job(project, fh, name, model_name="linear", version=name, **kwargs)
    job.refresh_from_db()
    return job


def test_hostile_pt2_job_refuses_and_runs_nothing(acme, media, models, workdir, caplog,
                                                  django_capture_on_commit_callbacks):
    job = _job(acme, models / "hostile.pt2", "linear.pt2", django_capture_on_commit_callbacks)
    assert not (workdir / "marker").exists()
    assert job.status == ProfilingJob.FAILED and job.error_stage == "load"
    assert "refused" in job.error_message
    assert "builtins.eval" in job.error_message and "data/sample_inputs/model.pt" in job.error_message
    assert "could run code" in job.error_message
    assert "Fallback to weights_only=False" not in caplog.text
    assert not job.artifacts.exclude(role="input").exists()


def test_hostile_torchscript_job_refuses_and_runs_nothing(acme, media, models, workdir,
                                                          django_capture_on_commit_callbacks):
    job = _job(acme, models / "hostile.pt", "linear.pt", django_capture_on_commit_callbacks, input_shapes=[[1, 4]])
    assert not (workdir / "marker").exists()
    assert job.status == ProfilingJob.FAILED and job.error_stage == "load"
    assert "refused" in job.error_message and "builtins.eval" in job.error_message
    assert "data.pkl" in job.error_message


@pytest.mark.parametrize("name, shapes", [("linear.pt2", None), ("linear.pt", [[1, 4]])])
def test_legit_archives_still_convert(acme, media, models, workdir, name, shapes, django_capture_on_commit_callbacks):
    job = _job(acme, models / name, name, django_capture_on_commit_callbacks, input_shapes=shapes)
    assert job.status == ProfilingJob.SUCCEEDED, job.error_message
    assert job.artifacts.filter(role="converted").count() == 1


# --- the checks themselves ---------------------------------------------------------------


def test_real_archives_pass_the_check(models, tmp_path):
    """What torch itself writes, including buffers, non-float dtypes, kwargs and dynamic shapes."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
            self.register_buffer("k", torch.arange(4))
            self.half = torch.ones(2, dtype=torch.float16)

        def forward(self, x, y=None):
            return torch.relu(self.bn(self.conv(x))).flatten(1)[:, : x.shape[0]] * 2, self.k + 1, self.half * 2

    net = Net().eval()
    x = torch.rand(2, 3, 8, 8)
    ep = torch.export.export(net, (x,), {"y": torch.zeros(1, dtype=torch.int64)},
                             dynamic_shapes={"x": {0: torch.export.Dim("b", min=2, max=8)}, "y": None})
    torch.export.save(ep, tmp_path / "rich.pt2")
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())),
                   tmp_path / "scripted.pt")
    check_torch_file(tmp_path / "rich.pt2", "torch_export")
    check_torch_file(tmp_path / "scripted.pt", "torchscript")
    check_torch_file(models / "linear.pt2", "torch_export")
    check_torch_file(models / "linear.pt", "torchscript")


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_globals_are_found_in_every_pickle_protocol(protocol):
    assert pickle_globals(pickle.dumps([Payload(), Payload()], protocol=protocol)) == ["builtins.eval"]


def test_stack_global_from_unknown_values_is_refused():
    # protocol 4: STACK_GLOBAL whose names are not plain string pushes (here: built by an opcode we do not follow)
    data = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x86\x94\x8c\x01x\x93."
    assert "<unknown>" in pickle_globals(data)


def test_hostile_graph_json_is_refused(models, tmp_path):
    """A .pt2 graph is code too: targets are resolved from `torch` with getattr, shapes parsed by sympify."""
    src = models / "linear.pt2"
    name = _member(src, "/models/model.json")
    graph = json.loads(zipfile.ZipFile(src).read(name))
    graph["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"
    _rewrite(src, tmp_path / "target.pt2", name, json.dumps(graph).encode())
    with pytest.raises(UnsafeModel, match="torch.os.system"):
        check_torch_file(tmp_path / "target.pt2", "torch_export")

    graph = json.loads(zipfile.ZipFile(src).read(name))
    graph["graph_module"]["graph"]["nodes"][0]["inputs"].append(
        {"name": "n", "arg": {"as_sym_int": {"as_expr": {"expr_str": COMMAND, "hint": None}}}, "kind": 1})
    _rewrite(src, tmp_path / "expr.pt2", name, json.dumps(graph).encode())
    with pytest.raises(UnsafeModel, match="shape expression"):
        check_torch_file(tmp_path / "expr.pt2", "torch_export")


def test_pickled_objects_in_pt2_configs_are_refused(models, tmp_path):
    src = models / "linear.pt2"
    name = _member(src, "/data/constants/model_constants_config.json")
    config = {"config": {"obj": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False}}}
    _rewrite(src, tmp_path / "opaque.pt2", name, json.dumps(config).encode())
    with pytest.raises(UnsafeModel, match="pickled Python object"):
        check_torch_file(tmp_path / "opaque.pt2", "torch_export")


def test_torch_load_cannot_fall_back_even_if_the_check_is_bypassed(models, workdir, monkeypatch):
    """Defense in depth: with the scan disabled, forced weights_only still keeps the payload from running."""
    monkeypatch.setattr(torchsafe, "check_torch_file", lambda path, kind: None)
    with pytest.raises(ConversionError) as err:
        load_torch(str(models / "hostile.pt2"), "torch_export")
    assert err.value.stage == "load"
    assert os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1"
    assert not (workdir / "marker").exists()
