"""Silent Neural Engine fallback (issue 14, item 2) on hand-made runs and plans."""
import numpy as np
import pytest

from insights.detection import mann_whitney_one_sided_p
from insights.fallback import assess, find_fallback_starts, find_silent_fallbacks, plan_on_cpu, timing_matches_cpu
from insights.settings import DetectionSettings

rng = np.random.default_rng(14)


def times(median, n=40, noise=0.05):
    return list(median * np.exp(rng.normal(0, noise, n)))


CPU = times(40.0)
ON_CPU_PLAN = [{"op": "conv_0", "device": "cpu"}, {"op": "relu_0", "device": "cpu"}]
ON_NE_PLAN = [{"op": "conv_0", "device": "neural_engine"}, {"op": "relu_0", "device": "cpu"}]


def test_a_plan_with_no_op_on_the_neural_engine_is_on_the_cpu():
    assert plan_on_cpu(ON_CPU_PLAN)
    assert not plan_on_cpu(ON_NE_PLAN)  # one op on the CPU is placement, not a fallback
    assert not plan_on_cpu([])


def test_predictions_matching_cpu_only_mark_the_unit():
    result = assess("cpuAndNeuralEngine", times(41.0), CPU)
    assert result.on_cpu and result.by == "timing"
    assert result.ratio == pytest.approx(41 / 40, rel=0.05)
    assert "cpuAndNeuralEngine runs on the CPU: its warm predictions match cpuOnly's" in result.text


def test_a_working_neural_engine_is_not_marked_and_is_shown_faster():
    result = assess("cpuAndNeuralEngine", times(9.0), CPU)
    assert not result.on_cpu and result.faster_than_cpu and result.text == ""


def test_too_few_runs_decide_nothing_however_alike():
    matches, ratio, p, faster = timing_matches_cpu(times(40.0, n=9), CPU)
    assert (matches, ratio, p, faster) == (False, None, None, False)


def test_noisy_runs_that_cannot_show_equivalence_are_not_marked():
    """Not telling the two apart is not evidence: 12 very noisy runs a side, same median, stay unmarked."""
    matches, ratio, p, _ = timing_matches_cpu(times(40.0, n=12, noise=0.6), times(40.0, n=12, noise=0.6))
    assert not matches and p > 0.001


@pytest.mark.parametrize("median", [9.0, 30.0, 36.0, 40.0, 44.0, 60.0])
def test_the_equivalence_decides_as_both_one_sided_tests_do(median):
    """Whether the second one-sided test runs or not, the unit is marked exactly when both p-values are under alpha,
    and a match reports the larger of the two."""
    conf = DetectionSettings()
    ne = times(median)
    low, high = 1 - conf.fallback_margin, 1 / (1 - conf.fallback_margin)
    both = max(mann_whitney_one_sided_p(np.asarray(ne), np.asarray(CPU) * low, "greater"),
               mann_whitney_one_sided_p(np.asarray(ne), np.asarray(CPU) * high, "less"))
    matches, _, p, _ = timing_matches_cpu(ne, CPU, conf)
    assert matches == (both < conf.fallback_alpha)
    assert p == pytest.approx(both) if matches else p >= conf.fallback_alpha


def test_plans_alone_mark_the_unit_and_units_without_the_neural_engine_never():
    result = assess("all", [], [], [plan_on_cpu(p) for p in (ON_CPU_PLAN, ON_CPU_PLAN, ON_NE_PLAN)])
    assert result.on_cpu and result.by == "compute plans"
    assert result.text == "all runs on the CPU: 2 of 3 compute plans place no op on the Neural Engine"
    assert not assess("cpuAndGPU", times(40.0), CPU).on_cpu


def rows(version, units, median, start_id, n=30):
    return [(start_id + i, version, "A15 Bionic", units, "ok", t) for i, t in enumerate(times(median, n))]


def test_a_fallback_that_starts_at_a_version_is_found_once_at_that_version():
    runs = []
    for i, version in enumerate(["3.2.0", "3.3.0", "3.4.0", "3.5.0"]):
        runs += rows(version, "cpuOnly", 40.0, 1000 * i)
        runs += rows(version, "cpuAndNeuralEngine", 9.0 if version < "3.4.0" else 40.5, 1000 * i + 500)
        runs += rows(version, "cpuAndGPU", 20.0, 1000 * i + 800)
    (start,) = find_fallback_starts("face-retouch", runs)
    assert (start.chip, start.compute_units, start.version, start.baseline_version) == (
        "A15 Bionic", "cpuAndNeuralEngine", "3.4.0", "3.3.0")
    assert start.text == "from 3.4.0, cpuAndNeuralEngine on A15 Bionic runs on the CPU"
    assert len(start.run_ids) == 30 and start.baseline.faster_than_cpu
    assert find_fallback_starts("face-retouch", runs, versions=["3.5.0"]) == []


def test_a_unit_on_the_cpu_from_its_first_version_has_no_start():
    runs = rows("3.2.0", "cpuOnly", 40.0, 0) + rows("3.2.0", "cpuAndNeuralEngine", 40.0, 100)
    assert find_fallback_starts("m", runs) == []


def test_plans_alone_can_place_the_start():
    """Too few cpuOnly runs to time against: the plans (on the Neural Engine, then on the CPU) place the start."""
    runs = rows("3.2.0", "cpuAndNeuralEngine", 9.0, 0) + rows("3.3.0", "cpuAndNeuralEngine", 40.0, 100)
    plans = {("A15 Bionic", "cpuAndNeuralEngine", "3.2.0"): [plan_on_cpu(ON_NE_PLAN)],
             ("A15 Bionic", "cpuAndNeuralEngine", "3.3.0"): [plan_on_cpu(ON_CPU_PLAN)] * 2}
    (start,) = find_fallback_starts("m", runs, plans)
    assert (start.version, start.baseline_version, start.current.by) == ("3.3.0", "3.2.0", "compute plans")


def test_the_check_gets_one_finding_per_start_in_milliseconds():
    runs = []
    for i, version in enumerate(["3.2.0", "3.3.0"]):
        runs += rows(version, "cpuOnly", 40.0, 1000 * i)
        runs += rows(version, "cpuAndNeuralEngine", 9.0 if version == "3.2.0" else 40.0, 1000 * i + 500)
    (f,) = find_silent_fallbacks("face-retouch", runs)
    assert (f.kind, f.key.chip, f.key.device, f.key.compute_units, f.key.metric) == (
        "silent_fallback", "A15 Bionic", None, "cpuAndNeuralEngine", "prediction_ms_median")
    assert f.baseline == pytest.approx(9.0, rel=0.05) and f.current == pytest.approx(40.0, rel=0.05)
    assert f.change > 3 and f.p_value < 0.001 and (f.runs_baseline, f.runs_current) == (30, 30)
