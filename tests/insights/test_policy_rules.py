"""The compute-unit policy on hand-made evidence."""

import math
from dataclasses import replace

import pytest

from insights.policy import UnitEvidence, assess_units, break_even_predictions, recommend_compute_units
from insights.settings import PolicySettings


def unit(name, runs=100, failures=0, load=300.0, first=40.0, warm=20.0, load_kind="cached"):
    return UnitEvidence(name, runs, {"crash": failures} if failures else {}, {load_kind: load},
                        {load_kind: runs - failures}, first, warm)


FAST_LOAD = dict(load=200.0, first=30.0, warm=40.0)      # GPU-like: compiles quickly, predicts slowly
FAST_PREDICT = dict(load=2000.0, first=100.0, warm=10.0)  # Neural-Engine-like: slow compile, fast predictions


@pytest.mark.parametrize("predictions_per_session", [1, 10, 10_000])
def test_crashing_unit_is_never_chosen_however_fast(predictions_per_session):
    device = [unit("all", failures=1, load=1.0, first=1.0, warm=0.01),  # 1% failures, 1000x faster
              unit("cpuAndNeuralEngine", failures=3, load=2.0, first=1.0, warm=0.02),
              unit("cpuAndGPU"), unit("cpuOnly", warm=80.0)]
    policy = recommend_compute_units(device, [], predictions_per_session)
    assert policy.compute_units == "cpuAndGPU"
    assert policy.fallback == ["cpuOnly"]
    assert policy.basis == "device"
    assert not policy.evidence["all"].eligible and "failure rate" in policy.evidence["all"].note


def test_failures_on_the_device_veto_a_unit_its_chip_finds_clean():
    device = [unit("all", runs=3, failures=2), unit("cpuAndGPU", runs=3)]
    chip = [unit("all", runs=200, load=100.0, warm=1.0), unit("cpuAndGPU", runs=200)]
    policy = recommend_compute_units(device, chip, 100)
    assert policy.basis == "chip"
    assert policy.compute_units == "cpuAndGPU"
    assert "all" not in policy.fallback
    assert "(2 of 3 runs) on this device" in policy.evidence["all"].note


def test_rate_at_the_threshold_passes_and_upper_bound_is_only_reported():
    device = [unit("cpuAndNeuralEngine", runs=200, failures=1, **FAST_PREDICT), unit("cpuAndGPU", runs=25)]
    policy = recommend_compute_units(device, [], 1000)
    assert policy.compute_units == "cpuAndNeuralEngine"  # 0.5% observed passes, though its upper bound is ~2.8%
    assert policy.evidence["cpuAndNeuralEngine"].crash_rate_upper > 0.02
    assert policy.evidence["cpuAndGPU"].crash_rate_upper == pytest.approx(0.133, abs=1e-3)


def test_each_unit_backs_off_alone_so_a_thinly_measured_gpu_still_competes():
    device = [unit("cpuAndNeuralEngine", runs=40, **FAST_PREDICT), unit("cpuAndGPU", runs=9, **FAST_LOAD)]
    chip = [unit("cpuAndNeuralEngine", runs=200, **FAST_PREDICT), unit("cpuAndGPU", runs=200, **FAST_LOAD)]
    policy = recommend_compute_units(device, chip, 1)  # one diffusion step: the fast load wins
    assert (policy.compute_units, policy.basis) == ("cpuAndGPU", "chip")
    assert (policy.evidence["cpuAndGPU"].source, policy.evidence["cpuAndNeuralEngine"].source) == ("chip", "device")
    assert policy.evidence["cpuAndGPU"].runs == 200


def test_small_samples_back_off_to_chip_then_default():
    small = [unit("cpuAndNeuralEngine", runs=5, **FAST_PREDICT), unit("cpuAndGPU", runs=9)]
    chip = [unit("cpuAndNeuralEngine", runs=60, **FAST_PREDICT), unit("cpuAndGPU", runs=60, **FAST_LOAD)]

    by_chip = recommend_compute_units(small, chip, 1000)
    assert (by_chip.basis, by_chip.compute_units, by_chip.fallback) == (
        "chip", "cpuAndNeuralEngine", ["cpuAndGPU", "cpuOnly"])
    assert "same chip" in by_chip.reason

    by_default = recommend_compute_units(small, small, 1000)
    assert (by_default.basis, by_default.compute_units, by_default.fallback) == ("default", "cpuAndGPU", ["cpuOnly"])
    assert "too little data" in by_default.reason


def test_unknown_device_and_chip_get_the_default():
    policy = recommend_compute_units([], [], 1)
    assert (policy.compute_units, policy.fallback, policy.basis, policy.evidence) == (
        "cpuAndGPU", ["cpuOnly"], "default", {})


def test_default_that_crashed_on_the_device_falls_to_cpu_only():
    policy = recommend_compute_units([unit("cpuAndGPU", runs=4, failures=1)], [], 10)
    assert (policy.compute_units, policy.fallback, policy.basis) == ("cpuOnly", [], "default")


def test_workload_size_flips_the_choice_at_the_computed_break_even():
    device = [unit("cpuAndNeuralEngine", **FAST_PREDICT), unit("cpuAndGPU", **FAST_LOAD)]
    assessed = assess_units(device, 1)
    n = break_even_predictions(assessed["cpuAndNeuralEngine"], assessed["cpuAndGPU"])
    assert n == pytest.approx(1 + (2100 - 230) / (40 - 10))  # 63.33
    below, above = math.floor(n), math.ceil(n)
    assert recommend_compute_units(device, [], below).compute_units == "cpuAndGPU"
    assert recommend_compute_units(device, [], above).compute_units == "cpuAndNeuralEngine"
    assert recommend_compute_units(device, [], above).fallback == ["cpuAndGPU", "cpuOnly"]


def test_no_break_even_when_one_unit_is_faster_for_every_workload():
    assessed = assess_units([unit("all", load=100.0, first=10.0, warm=5.0), unit("cpuAndGPU")], 1)
    assert break_even_predictions(assessed["all"], assessed["cpuAndGPU"]) is None


def test_cpu_only_always_ends_the_chain_even_when_faster_than_others():
    device = [unit("cpuAndNeuralEngine", **FAST_PREDICT), unit("cpuOnly", load=50.0, first=20.0, warm=30.0),
              unit("cpuAndGPU", **FAST_LOAD)]
    policy = recommend_compute_units(device, [], 1000)
    assert policy.fallback == ["cpuAndGPU", "cpuOnly"]
    assert policy.evidence["cpuOnly"].expected_session_ms < policy.evidence["cpuAndGPU"].expected_session_ms


def test_load_mix_is_pooled_and_a_named_load_kind_is_used_alone():
    ne = UnitEvidence("cpuAndNeuralEngine", 40, {}, {"cold": 4000.0, "cached": 1000.0}, {"cold": 40, "cached": 0},
                      100.0, 10.0)
    gpu = UnitEvidence("cpuAndGPU", 40, {}, {"cold": 400.0, "cached": 300.0}, {"cold": 0, "cached": 40}, 30.0, 40.0)
    mixed = assess_units([ne, gpu], 1)
    assert mixed["cpuAndNeuralEngine"].load_ms_median == pytest.approx(2500.0)  # same 50/50 mix for both units
    assert mixed["cpuAndGPU"].load_ms_median == pytest.approx(350.0)
    cold = assess_units([ne, gpu], 1, load_kind="cold")
    assert cold["cpuAndNeuralEngine"].load_ms_median == 4000.0


def test_a_unit_without_the_named_load_kind_is_not_eligible():
    only_cached = unit("cpuAndNeuralEngine", **FAST_PREDICT)
    policy = recommend_compute_units([only_cached, unit("cpuAndGPU", load_kind="cold")], [], 1000, load_kind="cold")
    assert policy.compute_units == "cpuAndGPU"
    assert policy.evidence["cpuAndNeuralEngine"].note == "no cold load"


def test_thresholds_come_from_settings():
    device = [unit("cpuAndNeuralEngine", runs=5, **FAST_PREDICT), unit("cpuAndGPU", runs=5)]
    assert recommend_compute_units(device, [], 1000, settings=PolicySettings(min_runs=5)).basis == "device"


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="predictions_per_session"):
        recommend_compute_units([unit("cpuAndGPU")], [], 0)
    with pytest.raises(ValueError, match="load_kind"):
        recommend_compute_units([unit("cpuAndGPU")], [], 1, load_kind="warm")
    with pytest.raises(ValueError):
        UnitEvidence("gpu", 10)


def test_answer_has_the_api_shape():
    answer = recommend_compute_units([unit("cpuAndNeuralEngine", runs=412, **FAST_PREDICT), unit("cpuAndGPU")],
                                     [], 300).to_dict()
    assert set(answer) == {"compute_units", "optimization_hints", "fallback", "fallback_configurations", "basis",
                           "reason", "evidence"}
    assert answer["optimization_hints"] == {}  # Apple's defaults: nothing to set
    assert answer["fallback"] == ["cpuAndGPU", "cpuOnly"]
    assert answer["fallback_configurations"] == [{"compute_units": "cpuAndGPU", "optimization_hints": {}},
                                                 {"compute_units": "cpuOnly", "optimization_hints": {}}]
    assert {"runs", "crash_rate", "crash_rate_upper", "load_ms_median", "first_prediction_ms_median",
            "prediction_ms_median", "expected_session_ms"} <= set(answer["evidence"]["cpuAndNeuralEngine"])
    assert answer["evidence"]["cpuAndNeuralEngine"]["expected_session_ms"] == 2000 + 100 + 299 * 10


# --- what would change the answer (issue 12, item 4) -------------------------------------------------------------

def test_a_faster_unit_short_of_runs_says_how_many_more_would_decide():
    """style-diffusion 1.1.0 on iPhone 16 Pro Max: cpuAndGPU at 1,000 predictions (352 s) while the Neural Engine
    would take 81 s by its 9 runs, one short of the minimum. The gate stays; the page says what would decide it."""
    device = [unit("cpuAndNeuralEngine", runs=9, load=9000.0, first=500.0, warm=71.5),
              unit("cpuAndGPU", runs=30, load=900.0, first=400.0, warm=350.7)]
    policy = recommend_compute_units(device, [], 1000)
    assert policy.compute_units == "cpuAndGPU"  # the gate holds: 9 runs are not enough
    (change,) = policy.changes
    assert (change.compute_units, change.more_runs, change.clean, change.level) == ("cpuAndNeuralEngine", 1, False,
                                                                                     "device")
    session = {u: policy.evidence[u].expected_session_ms for u in ("cpuAndGPU", "cpuAndNeuralEngine")}
    assert change.speedup == pytest.approx(session["cpuAndGPU"] / session["cpuAndNeuralEngine"])
    assert change.text("iPhone 16 Pro Max") == (
        f"1 more run of cpuAndNeuralEngine on iPhone 16 Pro Max: it is {change.speedup:.1f}× faster at this "
        f"workload by its 9 runs")
    # With the tenth run the same evidence decides it the other way, and nothing is left to ask for.
    device[0] = unit("cpuAndNeuralEngine", runs=10, load=9000.0, first=500.0, warm=71.5)
    decided = recommend_compute_units(device, [], 1000)
    assert decided.compute_units == "cpuAndNeuralEngine" and decided.changes == ()


def test_a_faster_unit_out_on_one_failure_says_how_many_clean_runs_would_pass_the_gate():
    """iPhone 11: the Neural Engine is out after 1 failure in 14 runs; 1 / 200 = 0.5% is the gate."""
    device = [unit("cpuAndNeuralEngine", runs=14, failures=1, **FAST_PREDICT),
              unit("cpuAndGPU", runs=40, **FAST_LOAD)]
    policy = recommend_compute_units(device, [], 1000)
    assert policy.compute_units == "cpuAndGPU"
    (change,) = policy.changes
    assert (change.more_runs, change.clean, change.failures, change.runs) == (186, True, 1, 14)
    text = change.text("iPhone 11")
    assert text.startswith("cpuAndNeuralEngine is out after 1 failure in 14 runs: 186 clean runs would bring it "
                           "under the 0.5% gate")
    assert "(unlikely: ≥ 1.3% at 95%)" in text
    # 186 clean runs do pass the gate, 185 do not.
    assert recommend_compute_units([unit("cpuAndNeuralEngine", runs=200, failures=1, **FAST_PREDICT),
                                    unit("cpuAndGPU", runs=40, **FAST_LOAD)], [], 1000).compute_units == \
        "cpuAndNeuralEngine"
    assert not recommend_compute_units([unit("cpuAndNeuralEngine", runs=199, failures=1, **FAST_PREDICT),
                                        unit("cpuAndGPU", runs=40, **FAST_LOAD)], [], 1000).evidence[
        "cpuAndNeuralEngine"].eligible


def test_slower_or_untimed_units_and_a_settled_answer_ask_for_nothing():
    device = [unit("cpuAndNeuralEngine", runs=3, **FAST_PREDICT), unit("cpuAndGPU", runs=40, **FAST_LOAD)]
    assert recommend_compute_units(device, [], 1).changes == ()  # at one prediction the GPU's load wins anyway
    untimed = UnitEvidence("all", 4, {"crash": 4})
    assert recommend_compute_units([untimed, unit("cpuAndGPU", runs=40)], [], 100).changes == ()


def test_chip_evidence_names_the_chip_and_a_gate_without_failures_allowed_says_so():
    chip = [unit("all", runs=6, **FAST_PREDICT), unit("cpuAndGPU", runs=60, **FAST_LOAD)]
    (change,) = recommend_compute_units([], chip, 1000).changes
    assert change.level == "chip" and change.more_runs == 4
    assert change.text("iPhone 15 Pro", "A17 Pro").startswith("4 more runs of all on iPhone 15 Pro or another "
                                                              "A17 Pro device")
    strict = PolicySettings(max_failure_rate=0.0)
    device = [unit("all", runs=50, failures=1, **FAST_PREDICT), unit("cpuAndGPU", runs=60, **FAST_LOAD)]
    (change,) = recommend_compute_units(device, [], 1000, settings=strict).changes
    assert change.more_runs is None and change.text().endswith("the gate allows no failure")


# --- configurations: compute units plus optimization hints (issue 14, item 1) ------------------------------------

def hinted(name, strategy="fastPrediction", **kw):
    return replace(unit(name, **kw), specialization_strategy=strategy)


# One device, the Neural Engine measured with both strategies: fastPrediction loads 3 s slower and predicts 4 ms
# faster, so it pays back its load from the 751st prediction on (1 + 3000 / 4).
BOTH_STRATEGIES = [unit("cpuAndNeuralEngine", load=2000.0, first=100.0, warm=10.0),
                   hinted("cpuAndNeuralEngine", load=5000.0, first=100.0, warm=6.0),
                   unit("cpuAndGPU", **FAST_LOAD), unit("cpuOnly", load=150.0, first=60.0, warm=90.0)]


def test_fast_prediction_wins_long_sessions_and_the_default_short_ones_on_the_same_device():
    long = recommend_compute_units(BOTH_STRATEGIES, [], 5000)
    assert (long.compute_units, long.configuration.specialization_strategy) == ("cpuAndNeuralEngine",
                                                                                 "fastPrediction")
    assert long.to_dict()["optimization_hints"] == {"specialization_strategy": "fastPrediction"}
    # The chain tries the same unit with the default strategy first; apps without hints see units only.
    assert [c.label for c in long.fallback_configurations] == ["cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly"]
    assert long.fallback == ["cpuAndGPU", "cpuOnly"]
    assert "configurations (units and hints)" in long.reason

    short = recommend_compute_units(BOTH_STRATEGIES, [], 300)
    assert (short.compute_units, short.configuration.specialization_strategy) == ("cpuAndNeuralEngine", "default")
    assert short.to_dict()["optimization_hints"] == {}
    assert short.fallback_configurations[0].label == "cpuAndNeuralEngine + fastPrediction"
    assert short.fallback == ["cpuAndGPU", "cpuOnly"]


def test_the_strategies_cross_at_their_break_even_and_not_before():
    assessed = recommend_compute_units(BOTH_STRATEGIES, [], 1).evidence
    default, fast = assessed["cpuAndNeuralEngine"], assessed["cpuAndNeuralEngine + fastPrediction"]
    assert break_even_predictions(default, fast) == pytest.approx(751.0)
    assert recommend_compute_units(BOTH_STRATEGIES, [], 750).configuration.specialization_strategy == "default"
    assert recommend_compute_units(BOTH_STRATEGIES, [], 752).configuration.specialization_strategy == (
        "fastPrediction")


def test_configurations_are_gated_and_vetoed_apart():
    """A crashing fastPrediction does not taint the default strategy of the same unit, nor the other way round."""
    device = [unit("cpuAndNeuralEngine", load=2000.0, first=100.0, warm=10.0),
              hinted("cpuAndNeuralEngine", runs=50, failures=5, load=5000.0, first=100.0, warm=1.0),
              unit("cpuOnly", warm=90.0)]
    policy = recommend_compute_units(device, [], 10_000)
    assert policy.configuration.label == "cpuAndNeuralEngine"
    assert not policy.evidence["cpuAndNeuralEngine + fastPrediction"].eligible
    assert "failure rate" in policy.evidence["cpuAndNeuralEngine + fastPrediction"].note
    (change,) = policy.changes
    assert change.label == "cpuAndNeuralEngine + fastPrediction"
    assert change.text().startswith("cpuAndNeuralEngine + fastPrediction is out after 5 failures")


def test_evidence_of_a_configuration_carries_its_hints_in_the_answer():
    answer = recommend_compute_units(BOTH_STRATEGIES, [], 5000).to_dict()
    assert answer["evidence"]["cpuAndNeuralEngine + fastPrediction"]["optimization_hints"] == {
        "specialization_strategy": "fastPrediction"}
    assert answer["evidence"]["cpuAndNeuralEngine"]["optimization_hints"] == {}


def test_a_unit_whose_runs_show_it_runs_on_the_cpu_is_never_the_neural_engine_answer():
    """A silent fallback (insights.fallback): the runs asked for the Neural Engine but ran on the CPU. However its
    timings price, the policy does not call it the Neural Engine answer."""
    device = [replace(unit("cpuAndNeuralEngine", load=100.0, first=10.0, warm=5.0),
                      runs_on_cpu="cpuAndNeuralEngine runs on the CPU: its predictions match cpuOnly's"),
              unit("cpuAndGPU", **FAST_LOAD), unit("cpuOnly", warm=90.0)]
    policy = recommend_compute_units(device, [], 100)
    assert policy.compute_units == "cpuAndGPU"
    assert "cpuAndNeuralEngine" not in policy.fallback
    assessment = policy.evidence["cpuAndNeuralEngine"]
    assert not assessment.eligible and "runs on the CPU" in assessment.note
    assert policy.to_dict()["evidence"]["cpuAndNeuralEngine"]["runs_on_cpu"] is True
    assert "runs on the CPU" in policy.reason
    assert not policy.changes  # no number of runs makes it the Neural Engine
