"""Figure builders on hand-made data: the right traces, axes, counts and intervals. No database."""
from datetime import date, datetime, timezone

import pytest

from dashboard.figures import compare, fleet, overview, run, versions
from dashboard.figures.common import duration_ticks, ms, percent

UNITS = ["cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all"]


def texts(trace):
    return [t for row in trace.text for t in row if t]


class TestOverviewHeatmap:
    rows = ["iPhone 13 · A15 Bionic", "iPhone 15 Pro · A17 Pro"]
    cells = {
        ("iPhone 13 · A15 Bionic", "cpuAndGPU"): overview.Cell(20.0, 40),
        ("iPhone 13 · A15 Bionic", "all"): overview.Cell(10.0, 3),  # under-sampled
        ("iPhone 15 Pro · A17 Pro", "cpuAndGPU"): overview.Cell(16.0, 30),
        ("iPhone 15 Pro · A17 Pro", "cpuAndNeuralEngine"): overview.Cell(4.0, 25, recommended=True),
    }

    def build(self, **kw):
        return overview.heatmap(self.rows, UNITS, self.cells, title="Warm", min_runs=10, **kw)

    def test_sampled_and_undersampled_cells_are_separate_traces(self):
        sure, few = self.build().data
        assert list(sure.y) == self.rows and list(sure.x) == UNITS
        # Under-sampled: no colour in the main trace, grey cell with its count in the second one.
        assert sure.z[0][3] is None and few.z[0][3] == 0.0
        assert "n=3 · too few" in few.text[0][3]
        assert few.text[0][0] == "no runs"
        assert sure.z[0][1] is not None and few.z[0][1] is None

    def test_every_coloured_cell_shows_its_value_and_count(self):
        sure = self.build().data[0]
        assert sure.text[0][1] == "20.0 ms<br>n=40"
        assert sure.text[1][2] == "★ 4.00 ms<br>n=25"

    def test_colour_is_slowdown_against_the_row_fastest(self):
        sure = self.build().data[0]
        assert sure.z[1][2] == 0.0  # the fastest unit on the device
        assert sure.z[1][1] == pytest.approx(1.0)  # 4x slower saturates the scale
        assert sure.z[0][1] == 0.0  # the only well-sampled cell of its row

    def test_a_fast_cell_that_fails_says_so(self):
        cells = dict(self.cells)
        cells[("iPhone 13 · A15 Bionic", "cpuAndNeuralEngine")] = overview.Cell(10.0, 40, failure_rate=0.3)
        fig = overview.heatmap(self.rows, UNITS, cells, title="Warm", min_runs=10, max_failure_rate=0.005)
        failing = fig.data[-1]
        # The failure rate leads the cell's text (two lines: it fits the cell, nothing is clipped).
        assert failing.text[0][2] == "<b>⚠ 30.0% failed</b><br>10.0 ms · n=40"
        assert "⚠" not in fig.data[0].text[0][1]

    def test_a15_crashing_units_are_not_painted_as_the_fastest(self):
        """Issue 12, item 1: on the demo's A15 Bionic row cpuAndNeuralEngine and all were dark green ("fastest")
        though they fail in ~31% and ~35% of runs, and cpuAndGPU (the policy's choice) looked 2x slower."""
        row = "A15 Bionic"
        cells = {(row, "cpuOnly"): overview.Cell(83.0, 17, failure_rate=0.0),
                 (row, "cpuAndGPU"): overview.Cell(27.5, 56, recommended=True, failure_rate=0.0),
                 (row, "cpuAndNeuralEngine"): overview.Cell(13.8, 47, failure_rate=0.309),
                 (row, "all"): overview.Cell(13.4, 42, failure_rate=0.354),
                 ("A13 Bionic", "all"): overview.Cell(35.1, 3, failure_rate=1 / 3)}  # few runs, still failing
        fig = overview.heatmap([row, "A13 Bionic"], UNITS, cells, title="Warm", min_runs=10,
                               max_failure_rate=0.005)
        sure, few, failing = fig.data
        assert failing.name == "fails in more than 0.5% of runs"
        # Not on the speed scale at all: their own trace, their own colour, outside the green-to-red scale.
        assert sure.z[0][2] is None and sure.z[0][3] is None
        assert failing.z[0][2] is not None and failing.z[0][3] is not None
        colours = {c for _, c in failing.colorscale}
        assert colours == {overview.FAILING_COLOR} and not colours & {c for _, c in overview.SPEED_SCALE}
        assert failing.text[0][2].startswith("<b>⚠ 30.9% failed</b>")
        assert failing.text[0][3].startswith("<b>⚠ 35.4% failed</b>")
        assert "not a choice" in failing.customdata[0][3]
        # The policy's choice is the fastest unit that does not fail too often: green, starred, framed.
        assert sure.z[0][1] == 0.0 and sure.text[0][1].startswith("★")
        # A failing unit with few runs is shown failing too (the policy vetoes it on any number of runs).
        assert failing.text[1][3].startswith("<b>⚠ 33.3% failed</b>") and "too few" in failing.text[1][3]
        assert few.z[1][3] is None
        # Each failing cell gets a dotted red frame (readable without colour).
        dotted = [s for s in fig.layout.shapes if s.line.dash == "dot"]
        assert len(dotted) == 3

    def test_recommended_cell_is_framed(self):
        shapes = self.build().layout.shapes
        assert len(shapes) == 1
        assert (shapes[0].x0 + shapes[0].x1) / 2 == pytest.approx(2) and (shapes[0].y0 + shapes[0].y1) / 2 == 1

    def test_rows_top_to_bottom_in_given_order(self):
        fig = self.build()
        assert fig.layout.yaxis.autorange == "reversed"

    def test_failure_rates_with_failures_on_few_runs_stand_out(self):
        cells = {("A15", "all"): overview.Cell(0.3, 40, 0.18, 0.45, failures=12),
                 ("A15", "cpuAndGPU"): overview.Cell(0.5, 4, 0.15, 0.85, failures=2),
                 ("A15", "cpuOnly"): overview.Cell(0.0, 4, 0.0, 0.49, failures=0)}
        fig = overview.heatmap(["A15"], UNITS, cells, title="Failures", min_runs=10, kind="rate")
        sure, few, failing = fig.data
        assert sure.z[0][3] == pytest.approx(0.3) and "30.0% (12/40)" in sure.text[0][3]
        assert "95% interval 18.0% – 45.0%" in sure.customdata[0][3]
        assert failing.text[0][1].startswith("2/4 failed")
        assert "n=4 · too few" in few.text[0][0]

    def test_rejects_unknown_kind(self):
        with pytest.raises(ValueError):
            self.build(kind="other")


def test_box_plot_uses_precomputed_quartiles_and_fades_small_samples():
    boxes = {("A15", "all"): compare.Box(8, 9, 10, 11, 14, 50), ("A17", "all"): compare.Box(3, 3.5, 4, 4.5, 5, 4),
             ("A15", "cpuAndGPU"): compare.Box(18, 19, 20, 21, 25, 30)}
    fig = compare.box_plot(["A15", "A17"], UNITS, boxes, title="t", value_label="ms", min_runs=10)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"cpuAndGPU", "all", "all (fewer than 10 runs)"}
    sure = by_name["all"]
    assert list(sure.x) == ["A15"] and list(sure.median) == [10] and list(sure.q1) == [9]
    assert list(sure.lowerfence) == [8] and list(sure.upperfence) == [14]
    assert by_name["all (fewer than 10 runs)"].opacity < 1 and by_name["all (fewer than 10 runs)"].offsetgroup == "all"
    assert fig.layout.boxmode == "group" and fig.layout.yaxis.type == "log"
    assert "50 runs" in sure.hovertext[0]


def test_failure_bars_show_failures_where_there_are_some_and_the_interval_as_a_quiet_band():
    # Issue 12, item 6: units with no failures were drawn as whiskers up to 40-80%, drowning the one real signal.
    rates = {("A15", "all"): compare.Rate(12, 40, 0.18, 0.46), ("A15", "cpuAndGPU"): compare.Rate(0, 40, 0.0, 0.09),
             ("A17", "cpuAndGPU"): compare.Rate(0, 4, 0.0, 0.49), ("A17", "all"): compare.Rate(0, 5, 0.0, 0.43)}
    fig = compare.failure_bars(["A15", "A17"], UNITS, rates, title="t")
    assert not any(t.error_y and t.error_y.array for t in fig.data)  # no whiskers
    bands = {t.legendgroup: t for t in fig.data if t.base is not None}
    bars = {t.legendgroup: t for t in fig.data if t.base is None}
    assert list(bars["cpuAndGPU"].x) == [] and list(bars["all"].x) == ["A15"]  # a bar only where runs failed
    # every unit in the legend once, failures or not (a unit without a bar by its band)
    assert [t.name for t in fig.data if t.showlegend is not False and (t.x is None or len(t.x))] == ["cpuAndGPU", "all"]
    assert bars["all"].y[0] == pytest.approx(0.3) and bars["all"].text[0] == "12/40"
    band = bands["all"]
    assert band.opacity <= 0.2 and band.offsetgroup == bars["all"].offsetgroup  # faint, behind its bar
    assert list(band.base) == [0.18, 0.0] and list(band.y) == [pytest.approx(0.28), pytest.approx(0.43)]
    assert "95% interval 18.0% – 46.0%" in band.hovertext[0] and "0 of 5 runs failed" in band.hovertext[1]
    assert fig.layout.yaxis.range[1] == pytest.approx(0.39)  # fits the 30% seen, not the 49% of 0 in 4 runs


def test_failure_bars_without_failures_keep_a_readable_axis():
    fig = compare.failure_bars(["A15"], UNITS, {("A15", "all"): compare.Rate(0, 3, 0.0, 0.56)}, title="t")
    assert fig.layout.yaxis.range[1] == pytest.approx(0.1) and [list(t.x) for t in fig.data] == [["A15"], []]


def test_log_axes_label_their_ticks_as_durations():
    # Issue 12, item 6: plotly labels a log axis's minor ticks "2 5 2 5".
    boxes = {("A15", "all"): compare.Box(3.2, 5, 10, 40, 480, 50), ("A17", "all"): compare.Box(1800, 2000, 2100, 2500, 3000, 50)}
    axis = compare.box_plot(["A15", "A17"], UNITS, boxes, title="t", value_label="ms", min_runs=10).layout.yaxis
    assert axis.type == "log" and axis.tickmode == "array"
    assert list(axis.ticktext) == ["2 ms", "5 ms", "10 ms", "20 ms", "50 ms", "100 ms", "200 ms", "500 ms", "1 s",
                                   "2 s", "5 s"]
    assert list(axis.tickvals) == [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    wide = duration_ticks(0.4, 90_000)  # past four decades: powers of ten only
    assert wide["ticktext"] == ["0.1 ms", "1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s"]
    linear = compare.box_plot(["A15"], UNITS, boxes, title="t", value_label="MB", min_runs=10, log_y=False)
    assert linear.layout.yaxis.type == "linear" and linear.layout.yaxis.tickvals is None
    # The policy's break-even chart, log for long sessions: its session times too.
    from policy import figures as policy_figures

    session = policy_figures.break_even([policy_figures.SessionLine("cpuAndGPU", 230.0, 40.0)], [], 5000).layout.yaxis
    assert session.type == "log" and session.ticktext and all(t.endswith((" ms", " s")) for t in session.ticktext)


def test_breakdown_bars_stack_stages_per_load_kind_and_unit():
    stages = {("cold", "cpuAndGPU"): {"decrypt": None, "compile": 100.0, "load": 300.0, "first_prediction": 20.0},
              ("cold", "all"): {"decrypt": None, "compile": 100.0, "load": 1200.0, "first_prediction": 40.0},
              ("cached", "all"): {"decrypt": None, "compile": None, "load": 150.0, "first_prediction": 40.0}}
    counts = {k: 10 for k in stages}
    fig = compare.breakdown_bars(UNITS, stages, counts, title="t")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["compile", "load", "first prediction"]  # no decrypt anywhere
    assert fig.layout.barmode == "stack"
    load = bars[1]
    assert list(load.x[0]) == ["cold load", "cold load", "cached load"] and list(load.x[1]) == ["cpuAndGPU", "all", "all"]
    assert list(load.y) == [300.0, 1200.0, 150.0]
    totals = [t for t in fig.data if t.type == "scatter"][0]
    assert list(totals.y) == [420.0, 1340.0, 190.0]


def test_first_vs_warm_side_by_side_with_ratio():
    fig = compare.first_vs_warm(UNITS, {"all": 50.0, "cpuAndGPU": 25.0}, {"all": 10.0, "cpuAndGPU": 10.0},
                                {"all": 30, "cpuAndGPU": 20}, title="t")
    first, warm = fig.data
    assert list(first.x) == ["cpuAndGPU", "all"] and list(first.y) == [25.0, 50.0] and list(warm.y) == [10.0, 10.0]
    assert "first = 5.0x warm · 30 runs" in fig.layout.xaxis.ticktext[1]


def test_versions_panels_show_intervals_and_hollow_small_samples():
    points = {("A16", "all", "3.2.0"): versions.Point(10.0, 9.5, 10.5, 40),
              ("A16", "all", "3.3.0"): versions.Point(11.5, 11.0, 12.0, 5),
              ("A15", "all", "3.2.0"): versions.Point(12.0, 11.0, 13.0, 20)}
    fig = versions.across_versions(["A15", "A16"], UNITS, ["3.1.0", "3.2.0", "3.3.0"], points, title="t",
                                   value_label="ms", min_runs=10)
    assert len(fig.data) == 2
    a16 = fig.data[1]
    assert list(a16.x) == ["3.2.0", "3.3.0"] and list(a16.y) == [10.0, 11.5]
    assert list(a16.error_y.array) == pytest.approx([0.5, 0.5])
    assert a16.marker.color[1] == "white"  # 5 runs: hollow
    assert fig.data[0].showlegend and not fig.data[1].showlegend  # one legend entry per unit
    assert list(fig.layout.xaxis.categoryarray) == ["3.1.0", "3.2.0", "3.3.0"]


def test_versions_relative_scale_shows_change_from_first_version():
    points = {("A16", "all", "3.2.0"): versions.Point(10.0, 9.0, 11.0, 40),
              ("A16", "all", "3.3.0"): versions.Point(11.5, 11.0, 12.0, 40)}
    fig = versions.across_versions(["A16"], UNITS, ["3.2.0", "3.3.0"], points, title="t", value_label="ms",
                                   min_runs=10, relative=True)
    line = fig.data[0]
    assert list(line.y) == pytest.approx([0.0, 0.15])
    assert list(line.error_y.array) == pytest.approx([0.1, 0.05])
    assert fig.layout.yaxis.tickformat == "+.0%" and "+15.0% vs 3.2.0" in line.hovertext[1]


def test_over_time_draws_bands_and_version_starts():
    days = [date(2026, 11, d) for d in (1, 2, 3)]
    series = {"all": [(d, versions.Point(10.0 + i, 9.0 + i, 11.0 + i, 20)) for i, d in enumerate(days)]}
    starts = {"3.2.0": datetime(2026, 11, 1, tzinfo=timezone.utc), "3.3.0": datetime(2026, 11, 2, 12, tzinfo=timezone.utc)}
    fig = versions.over_time(UNITS, series, starts, title="t", value_label="ms")
    band, line = fig.data
    assert band.fill == "toself" and len(band.x) == 6
    assert list(line.y) == [10.0, 11.0, 12.0]
    assert len(fig.layout.shapes) == 2 and [a.text for a in fig.layout.annotations] == ["3.2.0", "3.3.0"]


def test_warmup_curve_puts_first_prediction_at_zero():
    fig = run.warmup_curve(50.0, [12.0, 11.0, 11.5], title="t")
    first, warm = fig.data
    assert list(first.x) == [0] and list(first.y) == [50.0]
    assert list(warm.x) == [1, 2, 3]
    assert len(fig.layout.shapes) == 1  # the warm median line


def test_launch_timings_leave_out_missing_stages():
    fig = run.launch_timings({"decrypt": None, "compile": 800.0, "load": 1200.0, "first_prediction": 90.0}, title="t")
    assert [t.x[0] for t in fig.data] == [800.0, 1200.0, 90.0]


def test_plan_placement_shares():
    fig = run.plan_placement({"neural_engine": {"ops": 3, "cost": 0.6}, "cpu": {"ops": 1, "cost": 0.2}}, title="t")
    ne, cpu = fig.data
    assert ne.x[0] == pytest.approx(0.75) and ne.x[1] == pytest.approx(0.75)
    assert cpu.x[0] == pytest.approx(0.25)


def test_failures_by_status_stacks_rates():
    fig = fleet.failures_by_status(["cpuAndGPU", "all"], {"cpuAndGPU": 100, "all": 50},
                                   {("all", "crash"): 10, ("all", "timeout"): 1}, title="t")
    assert [t.name for t in fig.data] == ["crash", "timeout"]
    assert list(fig.data[0].y) == [0, 0.2]


def test_coverage_matrix_marks_undersampled_and_empty_cells():
    counts = {("iPhone 13", 18, "all"): 12, ("iPhone 13", 18, "cpuAndGPU"): 3}
    fig = fleet.coverage_matrix(["iPhone 13"], [18, 26], ["cpuAndGPU", "all"], counts, title="t", min_runs=10)
    few, enough = fig.data
    assert list(few.x[0]) == ["iOS 18", "iOS 18", "iOS 26", "iOS 26"]
    assert enough.z[0] == (None, 12, None, None) or list(enough.z[0]) == [None, 12, None, None]
    assert list(few.z[0]) == [1.0, None, 0.0, 0.0]
    assert list(few.text[0]) == ["3", "12", "0", "0"]


def test_formatting():
    assert ms(None) == "–" and ms(0.84) == "0.84 ms" and ms(12.34) == "12.3 ms" and ms(1430) == "1,430 ms"
    assert ms(12500) == "12.5 s"
    assert percent(0) == "0%" and percent(0.0004) == "<0.1%" and percent(0.302) == "30.2%"
