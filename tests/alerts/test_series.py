"""The check on hand-made series: a step, a crash-rate rise, a Neural Engine placement shift, and the choice of the
series that reports a regression."""
from dataclasses import replace

import pytest

from alerts.check import check_project
from alerts.models import Alert
from insights.regressions import find_placement_shifts, find_regressions
from perfboard.conf import detection_settings

pytestmark = pytest.mark.django_db


def test_step_on_one_device_is_one_alert_at_its_version(project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25, "1.3.0": 1.25}))
    result = check_project(project)
    alerts = list(Alert.objects.filter(project=project, metric="prediction_ms_median"))
    assert [(a.kind, a.version, a.baseline_version, a.chip, a.compute_units) for a in alerts] == [
        ("slowdown", "1.2.0", "1.1.0", "A16 Bionic", "all")]
    # iPhone15,2 is the chip's only device here: the chip-level series is the device's, reported once.
    assert alerts[0].device is None and alerts[0].os_major is None
    assert alerts[0].change == pytest.approx(0.25, abs=0.08) and alerts[0].p_value < 0.001
    assert {a.metric for a in Alert.objects.filter(project=project)} == {
        "prediction_ms_median", "prediction_ms_p90", "first_prediction_ms"}
    assert check_project(project).created == [] and result.findings == 3


def test_noise_and_too_few_runs_give_no_alert(project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.0}, seed=2))
    add_runs(step_runs({"2.0.0": 1.0, "2.1.0": 1.6}, n=5, model="tiny", seed=3))
    assert check_project(project).findings == 0 and not Alert.objects.exists()


def test_crash_rate_rise_is_alerted(project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.0}, n=30, crash_rates={"1.2.0": 0.3}))
    check_project(project)
    (alert,) = Alert.objects.filter(project=project)
    assert (alert.kind, alert.metric, alert.version, alert.baseline_version) == ("crash_rate", "crash_rate",
                                                                                  "1.2.0", "1.1.0")
    assert alert.baseline == 0 and alert.current == pytest.approx(0.3)


def plan(devices):
    return [{"op": f"op_{i}", "type": "conv", "device": d, "estimated_cost": 0.1} for i, d in enumerate(devices)]


def test_ops_that_left_the_neural_engine_are_named(project, step_runs, add_runs):
    plans = {"1.0.0": plan(["neural_engine"] * 4), "1.1.0": plan(["neural_engine", "cpu", "neural_engine", "gpu"])}
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0}, n=3, plans=plans))
    check_project(project)
    (alert,) = Alert.objects.filter(project=project)
    assert (alert.kind, alert.version, alert.baseline_version, alert.ops) == ("placement", "1.1.0", "1.0.0",
                                                                               ["op_1", "op_3"])
    assert alert.baseline == 1.0 and alert.current == 0.5 and alert.change == -0.5


def test_os_update_that_moves_ops_off_the_neural_engine_is_named():
    plans = {("1.0.0", "A16 Bionic", "all", 18): (1, plan(["neural_engine"] * 2)),
             ("1.0.0", "A16 Bionic", "all", 26): (2, plan(["neural_engine", "cpu"]))}
    (finding,) = find_placement_shifts("m", plans)
    assert (finding.version, finding.key.os_major, finding.key.baseline_os_major, finding.ops) == (
        "1.0.0", 26, 18, ["op_1"])


def row(i, version, device, value, os_major=18, chip="A16 Bionic"):
    return (i, version, device, chip, "all", os_major, "cached", "ok", f"2026-11-01T{i:05d}", 100.0, value * 4,
            value, value * 1.1, 50.0)


def _one_slow_device():
    """Four A16 devices, 12 runs a version each; iPhone15,3 alone 30% slower from 1.2.0 on."""
    import numpy as np

    rng = np.random.default_rng(5)
    rows, i = [], 0
    for version, factor in (("1.0.0", 1.0), ("1.1.0", 1.0), ("1.2.0", 1.3)):
        for device in ("iPhone15,2", "iPhone15,3", "iPhone15,4", "iPhone15,5"):
            for _ in range(12):
                i += 1
                slow = factor if device == "iPhone15,3" else 1.0
                rows.append(row(i, version, device, 12 * slow * float(np.exp(rng.normal(0, 0.05)))))
    return rows


def test_a_step_on_one_device_only_is_reported_for_that_device():
    rows = _one_slow_device()
    found = [(f.kind, f.version, f.key.device, f.key.metric) for f in find_regressions("m", rows, detection_settings())
             if f.key.metric == "prediction_ms_median"]
    assert found == [("slowdown", "1.2.0", "iPhone15,3", "prediction_ms_median")]


def _cached_loads(slow_on_os=None, factor=1.3, seed=3):
    """Cached loads of one chip on three OS majors; from 1.2.0 on ``factor`` slower on ``slow_on_os`` (all if None)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows, i = [], 0
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        for os_major, n in ((17, 10), (18, 30), (26, 10)):
            for _ in range(n):
                i += 1
                slow = factor if version == "1.2.0" and slow_on_os in (None, os_major) else 1.0
                load = 100.0 * slow * float(np.exp(rng.normal(0, 0.05)))
                rows.append((i, version, "iPhone15,2", "A16 Bionic", "all", os_major, "cached", "ok",
                             f"2026-11-01T{i:05d}", load, 40.0, 10.0, 11.0, 50.0))
    return rows


def test_a_slowdown_confined_to_one_os_names_that_os():
    found = [(f.version, f.key.os_major, round(f.change, 1)) for f in find_regressions("m", _cached_loads(18))
             if f.key.metric == "load_ms_cached"]
    assert found == [("1.2.0", 18, 0.3)]  # the chip's all-OS series shows it too, diluted; the alert names OS 18


def test_a_slowdown_on_every_os_stays_one_chip_alert():
    found = [(f.version, f.key.os_major) for f in find_regressions("m", _cached_loads(None))
             if f.key.metric == "load_ms_cached"]
    assert found == [("1.2.0", None)]


def test_device_and_os_cohort_series_are_held_to_the_drilldown_level():
    rows = _one_slow_device()

    def devices(settings):
        return {f.key.device for f in find_regressions("m", rows, settings) if f.key.metric == "prediction_ms_median"}

    defaults = detection_settings()
    # the chip's own level does not decide a device's alert; the drill-down level does
    assert devices(replace(defaults, alpha=1e-12)) == {"iPhone15,3"}
    assert devices(replace(defaults, drilldown_alpha=1e-12)) == set()


def _cold_loads(slow_units, seed=4):
    """Cold loads of one A16 device on four compute units, 6 a version each (each unit too few alone); from 1.2.0
    on 25% slower on ``slow_units``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows, i = [], 0
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        for units, level in (("all", 900.0), ("cpuAndGPU", 300.0), ("cpuAndNeuralEngine", 1000.0), ("cpuOnly", 250.0)):
            for _ in range(6):
                i += 1
                slow = 1.25 if version == "1.2.0" and units in slow_units else 1.0
                load = level * slow * float(np.exp(rng.normal(0, 0.1)))
                rows.append((i, version, "iPhone15,2", "A16 Bionic", units, 18, "cold", "ok", f"2026-11-01T{i:05d}",
                             load, 40.0, 10.0, 11.0, 50.0))
    return rows


def test_a_model_version_slowing_every_compute_unit_is_alerted_per_unit_from_their_runs_together():
    every = {"all", "cpuAndGPU", "cpuAndNeuralEngine", "cpuOnly"}
    found = {(f.version, f.key.compute_units) for f in find_regressions("m", _cold_loads(every))
             if f.key.metric == "load_ms_cold"}
    assert found == {("1.2.0", units) for units in every}


def test_a_compute_unit_that_did_not_slow_gets_no_alert_from_the_shared_step():
    found = {f.key.compute_units for f in find_regressions("m", _cold_loads({"all", "cpuAndGPU", "cpuAndNeuralEngine"}))
             if f.key.metric == "load_ms_cold"}
    assert "cpuOnly" not in found and len(found) >= 2
