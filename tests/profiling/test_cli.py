"""perfboard-lint exit codes and JSON shape."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from profiling.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_json_shape_and_exit_1_on_dynamic_weight(zoo, capsys):
    assert main([zoo.sq_int8, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {"ops", "weights", "compressed_fraction", "findings"} <= set(report)
    assert isinstance(report["ops"], dict) and all(isinstance(v, int) for v in report["ops"].values())
    assert all(isinstance(v, int) for v in report["weights"].values())
    f = report["findings"][0]
    assert set(f) >= {"rule", "op", "op_type", "chain", "runtime_bytes", "advice"}
    assert f["rule"] == "dynamic_weight" and f["chain"] == ["constexpr_affine_dequantize", "pow", "conv"]


def test_exit_0_when_clean_and_text_output(zoo, capsys):
    assert main([zoo.plain_int8]) == 0
    out = capsys.readouterr().out
    assert "compressed fraction" in out and "no findings" in out


def test_text_output_names_the_chain(zoo, capsys):
    assert main([zoo.sq_int8]) == 1
    out = capsys.readouterr().out
    assert "constexpr_affine_dequantize -> pow -> conv" in out


def test_warnings_alone_exit_0(zoo, capsys):
    assert main([zoo.skipped_int8, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == {"uncompressed_weight": 1}


def test_exit_2_on_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "model.mlmodel"
    bad.write_bytes(b"\x00\x01garbage")
    assert main([str(bad)]) == 2
    assert "cannot read model" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.mlpackage")]) == 2


def test_real_process_exit_codes(zoo, helpers, tmp_path):
    bare = helpers.bare_mlmodel_copy(zoo.sq_int8, tmp_path)
    env = dict(os.environ, PYTHONPATH=REPO)
    run = lambda *a: subprocess.run([sys.executable, "-m", "profiling.cli", *a], capture_output=True, text=True, env=env)
    r = run(bare, "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["has_dynamic_weight"] is True
    assert run(zoo.plain_int8).returncode == 0
    r = run(str(tmp_path / "nope"))
    assert r.returncode == 2 and "cannot read model" in r.stderr


def test_internal_error_is_exit_2_not_a_finding(zoo, monkeypatch, capsys):
    import profiling.lint

    def boom(path):
        raise RuntimeError("unexpected spec layout")

    monkeypatch.setattr(profiling.lint, "lint_path", boom)
    assert main([zoo.plain_int8]) == 2
    assert "unexpected spec layout" in capsys.readouterr().err
