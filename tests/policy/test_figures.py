"""Figure builders and presenters of the policy pages on hand-made data (no database)."""
import math

import pytest

from insights.policy import UnitEvidence, break_even_predictions, recommend_compute_units
from policy import figures
from policy.queries import break_even_data


def unit(name, load, first, warm, runs=50, crashes=0):
    return UnitEvidence(name, runs, {"crash": crashes} if crashes else {}, {"cached": load}, {"cached": runs - crashes},
                        first, warm)


def test_break_even_data_marks_where_the_neural_engine_pays_back():
    device = [unit("cpuAndGPU", 200.0, 30.0, 40.0), unit("cpuAndNeuralEngine", 2000.0, 100.0, 10.0),
              unit("all", 10.0, 1.0, 0.1, crashes=5)]
    policy = recommend_compute_units(device, [], 100)
    lines, crossings = break_even_data(policy)
    assert {line.compute_units: line.eligible for line in lines} == {
        "cpuAndGPU": True, "cpuAndNeuralEngine": True, "all": False}
    (crossing,) = crossings
    assert (crossing.cheaper, crossing.faster) == ("cpuAndGPU", "cpuAndNeuralEngine")
    expected = break_even_predictions(policy.evidence["cpuAndGPU"], policy.evidence["cpuAndNeuralEngine"])
    assert crossing.predictions == pytest.approx(expected) == pytest.approx(1 + 1870 / 30)
    fig = figures.break_even(lines, crossings, 100, "t")
    names = [t.name for t in fig.data if t.name]
    assert names == ["cpuAndGPU", "cpuAndNeuralEngine", "all (not eligible)"]
    assert [a.text for a in fig.layout.annotations] == ["cpuAndNeuralEngine wins from 64"]


def test_break_even_labels_of_nearby_crossings_do_not_overlap():
    """Issue 12, item 3: on the demo's iPhone 11 "cpuAndNeuralEngine wins from 103" printed over "all wins from
    89". Each label now has its own row, at least a line of text apart, and names its own crossing."""
    lines = [figures.SessionLine("cpuAndGPU", 300.0, 40.0), figures.SessionLine("all", 800.0, 34.3),
             figures.SessionLine("cpuAndNeuralEngine", 820.0, 35.0)]
    crossings = [figures.Crossing("cpuAndGPU", "all", 88.7, 3800.0),
                 figures.Crossing("cpuAndGPU", "cpuAndNeuralEngine", 102.2, 4340.0)]
    fig = figures.break_even(lines, crossings, 100, "t")
    labels = sorted(fig.layout.annotations, key=lambda a: a.x)
    assert [a.text for a in labels] == ["all wins from 89", "cpuAndNeuralEngine wins from 103"]
    assert fig.layout.xaxis.type == "log" and labels[0].x == pytest.approx(math.log10(88.7))
    # Rows in pixels: the labels' offsets from their points differ by more than the text's height (11 px font),
    # and the points are close (a few px on the chart), so the labels cannot share a row.
    assert abs(labels[0].ay - labels[1].ay) >= 18 and all(a.showarrow for a in labels)


def test_break_even_chart_goes_log_for_long_sessions():
    lines = [figures.SessionLine("cpuAndGPU", 230.0, 40.0)]
    assert figures.break_even(lines, [], 10).layout.xaxis.type == "linear"
    assert figures.break_even(lines, [], 5000).layout.xaxis.type == "log"


def test_cold_start_figure_stacks_the_stages_reported():
    rows = [figures.StageRow("all", "in_memory", 12, 16.0, 25.0, 130.0, 2.0, 175.0),
            figures.StageRow("all", "cached", 40, None, None, 17.0, 2.0, 19.5)]
    fig = figures.cold_start(rows)
    bars = {t.name: list(t.x) for t in fig.data if t.type == "bar"}
    assert bars == {"decrypt": [16.0, 0.0], "compile": [25.0, 0.0], "load": [130.0, 17.0],
                    "first prediction": [2.0, 2.0]}
    assert fig.layout.barmode == "stack"


def test_variant_rows_say_what_the_interval_says():
    def row(low, high, enough=True):
        return figures.VariantRow("all", "cold", "baseline", "prewarm", 20.0, 10.0, (low + high) / 2, low, high,
                                  0.001, 30, 30, enough)

    assert row(-12, -8).verdict == "faster" and row(2, 5).verdict == "slower"
    assert row(-3, 4).verdict == "no clear difference" and row(-12, -8, enough=False).verdict == "too few runs"
    fig = figures.variant_differences([row(-12, -8), row(-3, 4)], "First prediction")
    assert {t.name for t in fig.data} == {"faster", "no clear difference"}
