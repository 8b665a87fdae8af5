"""Settings declared once (issue 15): every PERFBOARD key the code reads is in perfboard/settings.py's
PERFBOARD_SETTINGS, read through perfboard.conf; nothing but perfboard/settings.py reads the environment; importing
the settings creates nothing."""
import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from insights.settings import ComparisonSettings, DetectionSettings, PolicySettings
from perfboard import conf
from perfboard.settings import PERFBOARD_SETTINGS, Setting

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".git", "node_modules", "build", "var", "__pycache__", ".pytest_cache"}
# Packages of the service (the agent, the benchmarks and the tests are clients and scripts with their own options).
SERVICE = ("alerts", "api", "collector", "dashboard", "insights", "perfboard", "policy", "profiling")
DECLARED = {s.key for s in PERFBOARD_SETTINGS}


def python_files(top: Path = ROOT):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _is_perfboard(node) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "PERFBOARD") or (
        isinstance(node, ast.Name) and node.id == "PERFBOARD")


def perfboard_reads(tree):
    """(line, key or None, how) for each PERFBOARD read: PERFBOARD["KEY"], PERFBOARD.get(...), perfboard_setting("KEY")
    and the keys of a {**settings.PERFBOARD, "KEY": ...} override; ``key`` is None where it is not a literal, as for
    PERFBOARD passed on or aliased (``conf = settings.PERFBOARD``, ``getattr(settings, "PERFBOARD")``)."""
    checked = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_perfboard(node.value):
            checked.add(id(node.value))
        elif isinstance(node, ast.Attribute) and node.attr == "get" and _is_perfboard(node.value):
            checked.add(id(node.value))
        elif isinstance(node, ast.Dict):
            checked.update(id(v) for k, v in zip(node.keys, node.values) if k is None)
    for node in ast.walk(tree):
        if (_is_perfboard(node) and isinstance(node.ctx, ast.Load) and id(node) not in checked
                or isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant) and node.args[1].value == "PERFBOARD"):
            yield node.lineno, None, "PERFBOARD aliased or passed on"
        if isinstance(node, ast.Subscript) and _is_perfboard(node.value):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
            yield node.lineno, key, "subscript"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_perfboard(func.value):
                yield node.lineno, None, ".get() with a default of its own"
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "perfboard_setting" and node.args:
                arg = node.args[0]
                yield node.lineno, arg.value if isinstance(arg, ast.Constant) else None, "perfboard_setting"
        elif isinstance(node, ast.Dict) and any(k is None and _is_perfboard(v) for k, v in zip(node.keys, node.values)):
            for k in node.keys:
                if isinstance(k, ast.Constant):
                    yield node.lineno, k.value, "override"


def test_the_tree_reads_declared_perfboard_keys_only():
    problems, seen = [], set()
    for path in python_files():
        rel = path.relative_to(ROOT)
        if rel.as_posix() in ("perfboard/settings.py", "perfboard/conf.py", "tests/test_settings.py"):
            continue
        for line, key, how in perfboard_reads(ast.parse(path.read_text(), str(rel))):
            if how.startswith(".get"):
                problems.append(f"{rel}:{line}: PERFBOARD.get(): read declared keys with perfboard_setting(key)")
            elif key is None:
                problems.append(f"{rel}:{line}: a PERFBOARD key that is not a literal ({how}) cannot be checked")
            elif key not in DECLARED:
                problems.append(f"{rel}:{line}: PERFBOARD[{key!r}] is not declared in perfboard/settings.py")
            else:
                seen.add(key)
    assert not problems, "\n".join(problems)
    assert {"MAX_UPLOAD_BYTES", "AB_MAX_RUNS", "RETRY_BASE_SECONDS", "PROFILING_MACOS_WORKERS"} <= seen  # scanned


def test_the_scan_finds_an_undeclared_key():
    code = ('x = settings.PERFBOARD["NOT_A_KEY"]\ny = settings.PERFBOARD.get("MIN_RUNS", 3)\n'
            'z = perfboard_setting("ALSO_NOT")\nsettings.PERFBOARD = {**settings.PERFBOARD, "NOR_THIS": 1}\n'
            'conf = settings.PERFBOARD\nconf = getattr(settings, "PERFBOARD", {})\n')
    found = [(key, how) for _, key, how in perfboard_reads(ast.parse(code))]
    assert found.count((None, "PERFBOARD aliased or passed on")) == 2
    assert ("NOT_A_KEY", "subscript") in found and ("ALSO_NOT", "perfboard_setting") in found
    assert ("NOR_THIS", "override") in found and any(how.startswith(".get") for _, how in found)


def test_the_accessor_refuses_an_undeclared_key():
    assert conf.perfboard_setting("MIN_RUNS") == settings.PERFBOARD["MIN_RUNS"]
    with pytest.raises(ImproperlyConfigured, match="NOT_A_KEY"):
        conf.perfboard_setting("NOT_A_KEY")


def test_every_key_is_declared_once_with_a_type_default_and_meaning():
    keys = [s.key for s in PERFBOARD_SETTINGS]
    assert len(keys) == len(set(keys))
    assert list(settings.PERFBOARD) == keys
    for s in PERFBOARD_SETTINGS:
        assert s.meaning and isinstance(s.default, s.type), s.key
        assert isinstance(settings.PERFBOARD[s.key], s.type), s.key
        if s.feeds:
            cls, field = s.feeds
            default = {f.name: f.default for f in dataclasses.fields(cls)}[field]
            assert s.default == default, f"{s.key}: its default is {cls.__name__}.{field}'s"


def test_settings_objects_are_built_from_the_keys(settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "MIN_RUNS": 13, "MAX_FAILURE_RATE": 0.02, "ALPHA": 0.01,
                          "DETECTION_MIN_RUNS": 4, "MIN_PLACEMENT_SHARE_DROP": 0.1, "COMPARISON_MIN_RUNS": 7,
                          "PROFILING_MAX_UPLOAD_BYTES": 1000}
    policy = conf.policy_settings()
    assert (policy.min_runs, policy.max_failure_rate, policy.final_fallback) == (13, 0.02, PolicySettings.final_fallback)
    detection = conf.detection_settings()
    assert (detection.alpha, detection.min_runs_per_window, detection.min_placement_share_drop) == (0.01, 4, 0.1)
    assert detection.min_effect == settings.PERFBOARD["MIN_EFFECT"]
    assert conf.comparison_settings().min_runs == 7 and conf.comparison_settings().seed == ComparisonSettings.seed
    assert conf.upload_limits().max_upload_bytes == 1000
    # every field of the detector's settings is fed by a key
    fed = {s.feeds[1] for s in PERFBOARD_SETTINGS if s.feeds and s.feeds[0] is DetectionSettings}
    assert fed == {f.name for f in dataclasses.fields(DetectionSettings)}


def test_environment_values_are_parsed_by_type():
    assert Setting("N", int, 3, "n").read({"PERFBOARD_N": "7"}) == 7
    assert Setting("N", int, 3, "n").read({}) == 3
    assert Setting("F", bool, True, "f").read({"PERFBOARD_F": "0"}) is False
    assert Setting("A", float, 0.1, "a", env="OTHER").read({"OTHER": "0.5", "PERFBOARD_A": "0.9"}) == 0.5
    with pytest.raises(ImproperlyConfigured, match="PERFBOARD_N must be int"):
        Setting("N", int, 3, "n").read({"PERFBOARD_N": "many"})
    with pytest.raises(ImproperlyConfigured, match="one of"):
        Setting("U", str, "all", "u", choices=("all", "cpuOnly")).read({"PERFBOARD_U": "gpu"})


def _os_environ(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"


def test_only_the_settings_module_reads_the_environment():
    problems = []
    for package in SERVICE:
        for path in python_files(ROOT / package):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "perfboard/settings.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                read = (isinstance(node, ast.Subscript) and _os_environ(node.value) and isinstance(node.ctx, ast.Load)
                        or isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and (node.func.attr == "get" and _os_environ(node.func.value) or node.func.attr == "getenv"))
                if read:
                    problems.append(f"{rel}:{node.lineno}")
    assert not problems, "environment read outside perfboard/settings.py: " + ", ".join(problems)


def test_importing_the_settings_creates_nothing_and_django_setup_makes_var(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STATIC_ROOT", "MEDIA_ROOT")}
    env.update(PERFBOARD_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="perfboard.settings")
    run = [sys.executable, "-c"]
    done = subprocess.run([*run, "import perfboard.settings"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not var.exists()
    done = subprocess.run([*run, "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (var / "static").is_dir()  # the SQLite database's directory and whitenoise's STATIC_ROOT
