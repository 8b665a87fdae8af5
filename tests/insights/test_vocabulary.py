"""The one version order and the configuration vocabulary (issue 15)."""
import random

import pytest

from insights.vocabulary import METRICS, Configuration, sort_versions, version_key


@pytest.mark.parametrize("older, newer", [
    ("1.0_9", "1.0_10"),
    ("3.9.1", "3.10.0"),
    ("2.0b1", "2.0"),
    ("2.0", "2.0.post1"),
    ("3.4.0", "3.4.0-int8"),
    ("3.4.0-fp16", "3.4.0-int8"),
    ("1.0", "1.0_9"),
    ("v1-beta2", "v1-beta10"),
    ("0.9", "1.0rc1"),
])
def test_versions_sort_by_the_documented_rule(older, newer):
    assert version_key(older) < version_key(newer)
    assert sort_versions([newer, older]) == [older, newer]


def test_trailing_zeros_name_one_release():
    assert version_key("3.2") == version_key("3.2.0")


def test_any_mix_of_versions_has_a_total_order():
    versions = ["1.0", "1.0_9", "1.0_10", "2.0b1", "2.0", "3.4.0-int8", "abc", "", "10", "1..2", "1.0+local"]
    expected = sort_versions(versions)
    for seed in range(20):
        shuffled = versions[:]
        random.Random(seed).shuffle(shuffled)
        assert sort_versions(shuffled) == expected


def test_a_configuration_names_only_the_hints_an_app_must_set():
    assert Configuration("all").hints == {} and Configuration("all").label == "all"
    fast = Configuration("cpuAndNeuralEngine", specialization_strategy="fastPrediction")
    assert fast.hints == {"specialization_strategy": "fastPrediction"}
    assert fast.label == "cpuAndNeuralEngine + fastPrediction"
    with pytest.raises(ValueError, match="compute_units"):
        Configuration("neuralEngineOnly")


def test_load_metrics_are_restricted_to_their_load_kind_and_timings_to_successful_runs():
    assert {m.load_kind for m in METRICS.values() if m.column == "load_ms"} == {"cold", "cached", "in_memory"}
    assert all(m.successful_only for m in METRICS.values())
    assert len({m.alert_name for m in METRICS.values()}) == len(METRICS)
