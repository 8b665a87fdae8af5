"""No shape of data can break a page (issue 13): every figure builder, fed generated inputs of varied shapes (no
rows, one point, many panels, empty groups, missing intervals, tiny and huge values), returns a figure that Plotly
accepts, checked the way a page ships it (the JSON of `to_html`, read back by Plotly's validating constructor).
The versions page answered 500 for 12 panels in 3 columns: a subplot domain of -5.55e-17.

A second property does the same end to end: small generated fleets in the database, every dashboard and policy
page with the usual query combinations, none may answer 5xx."""
import json
from datetime import datetime, timedelta, timezone

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.bulk import bulk_load
from collector.models import Project, Run
from dashboard.figures import compare, fleet, overview, run, versions
from insights.vocabulary import COMPUTE_UNITS, FAILURE_STATUSES, LAUNCH_STAGES, LOAD_KINDS, SPECIALIZATION_STRATEGIES
from policy import figures as policy_figures
from tests.conftest import RUN

# Few examples per run keep this file under a minute on a shared 2-core box; at 200 examples per builder and 50
# fleets of up to 40 runs (PostgreSQL and SQLite) nothing failed beyond the grid's domain.
FIGURES = settings(max_examples=12, deadline=None, database=None)
# The policy charts are built with validated graph objects (~0.2 s each): fewer examples keep the file fast.
POLICY_FIGURES = settings(FIGURES, max_examples=6)


def assert_renders(fig):
    """The figure as the page sends it (plotly's JSON, unvalidated) is valid for Plotly and strict JSON."""
    text = pio.to_json(fig, validate=False)
    parsed = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the figure's JSON"))
    go.Figure(parsed)  # Plotly's validation: raises ValueError on a property out of its range


# --- inputs ------------------------------------------------------------------------------------------------------

ms = st.one_of(st.floats(0.0, 1e9, allow_nan=False), st.sampled_from([0.0, 1e-6, 0.01, 3.0, 1e7]))
maybe_ms = st.one_of(st.none(), ms)
rate = st.floats(0.0, 1.0)
counts = st.integers(0, 10_000)
labels = st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=14)
units = st.lists(st.sampled_from(COMPUTE_UNITS), unique=True, max_size=len(COMPUTE_UNITS))
min_runs = st.integers(1, 30)


@st.composite
def ordered(draw, values=ms, n=3):
    """n non-decreasing values (quartiles, interval bounds)."""
    return sorted(draw(st.lists(values, min_size=n, max_size=n)))


@st.composite
def keyed(draw, keys, value):
    """A dict over a drawn subset of keys (so some groups are empty)."""
    return {k: draw(value) for k in keys if draw(st.booleans())}


@st.composite
def grid_cells(draw, value):
    rows, us = draw(labels), draw(units)
    return rows, us, draw(keyed([(r, u) for r in rows for u in us], value))


@st.composite
def overview_cell(draw):
    value = draw(st.one_of(st.none(), ms, rate))
    low, high = draw(st.one_of(st.just((None, None)), ordered(n=2)))
    return overview.Cell(value, draw(counts), low, high, recommended=draw(st.booleans()),
                         failures=draw(st.one_of(st.none(), counts)),
                         failure_rate=draw(st.one_of(st.none(), rate)), on_cpu=draw(st.booleans()))


@st.composite
def box(draw):
    low, q1, median, q3, high = draw(ordered(n=5))
    return compare.Box(low, q1, median, q3, high, draw(counts))


@st.composite
def wilson(draw):
    runs = draw(st.integers(1, 10_000))
    failures = draw(st.integers(0, runs))
    low, high = draw(ordered(rate, 2))
    return compare.Rate(failures, runs, low, high)


@st.composite
def point(draw):
    median = draw(ms)
    if draw(st.booleans()):
        return versions.Point(median, None, None, draw(counts))
    low, high = draw(ordered(n=2))
    return versions.Point(median, min(low, median), max(high, median), draw(counts))


# --- builders ----------------------------------------------------------------------------------------------------

@FIGURES
@given(shape=grid_cells(overview_cell()), kind=st.sampled_from(("time", "rate")), min_runs=min_runs,
       max_rate=st.one_of(st.none(), rate))
def test_overview_heatmap(shape, kind, min_runs, max_rate):
    rows, us, cells = shape
    assert_renders(overview.heatmap(rows, us, cells, title="t", min_runs=min_runs, kind=kind,
                                    max_failure_rate=max_rate))


@FIGURES
@given(shape=grid_cells(box()), min_runs=min_runs, log_y=st.booleans())
def test_compare_box_plot(shape, min_runs, log_y):
    rows, us, boxes = shape
    assert_renders(compare.box_plot(rows, us, boxes, title="t", value_label="ms", min_runs=min_runs, log_y=log_y))


@FIGURES
@given(shape=grid_cells(wilson()))
def test_compare_failure_bars(shape):
    rows, us, rates = shape
    assert_renders(compare.failure_bars(rows, us, rates, title="t"))


@FIGURES
@given(data=st.data(), us=units)
def test_compare_breakdown_and_first_vs_warm(data, us):
    keys = [(kind, u) for kind in LOAD_KINDS for u in us]
    stages = data.draw(keyed(keys, keyed(LAUNCH_STAGES, maybe_ms)))
    n = data.draw(keyed(keys, counts))
    assert_renders(compare.breakdown_bars(us, stages, n, title="t"))
    first, warm = data.draw(keyed(us, maybe_ms)), data.draw(keyed(us, maybe_ms))
    assert_renders(compare.first_vs_warm(us, first, warm, data.draw(keyed(us, counts)), title="t"))


@FIGURES
@given(n=st.integers(1, 80), columns=st.integers(1, 8))
@example(n=12, columns=3)  # 12 iPhones in 3 columns: the bottom row's domain was [-5.55e-17, 0.175]
def test_grid_domains_stay_inside_the_figure(n, columns):
    axes, titles, rows = versions.grid(n, columns)
    for name, axis in axes.items():
        low, high = axis["domain"]
        assert 0.0 <= low < high <= 1.0, (name, axis["domain"])
    assert len(titles) == n and rows * max(1, min(columns, n)) >= n


@FIGURES
@given(data=st.data(), panels=labels, us=units, version_list=labels, columns=st.integers(1, 5),
       relative=st.booleans(), min_runs=min_runs, min_span=st.floats(0.0, 1.0))
def test_versions_across_versions(data, panels, us, version_list, columns, relative, min_runs, min_span):
    points = data.draw(keyed([(p, u, v) for p in panels for u in us for v in version_list], point()))
    assert_renders(versions.across_versions(panels, us, version_list, points, title="t", value_label="ms",
                                            min_runs=min_runs, columns=columns, relative=relative,
                                            min_span=min_span))


DAY0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
days = st.lists(st.integers(0, 60), unique=True, max_size=8).map(lambda ds: [DAY0 + timedelta(days=d)
                                                                            for d in sorted(ds)])


@FIGURES
@given(data=st.data(), us=units, segmented=st.booleans(), version_list=labels)
def test_versions_over_time(data, us, segmented, version_list):
    keys = [(u, v) for u in us for v in version_list] if segmented else us
    series = data.draw(keyed(keys, days.flatmap(lambda ds: st.tuples(*[st.tuples(st.just(d), point())
                                                                        for d in ds]).map(list))))
    starts = {v: data.draw(days.map(lambda ds: ds[0] if ds else DAY0)) for v in version_list}
    assert_renders(versions.over_time(us, series, starts, title="t", value_label="ms"))


@FIGURES
@given(first=maybe_ms, predictions=st.lists(ms, max_size=30), timings=keyed(LAUNCH_STAGES, maybe_ms),
       plan=keyed(tuple(run.PLAN_LABELS), st.fixed_dictionaries({"ops": counts, "cost": maybe_ms})))
def test_run_figures(first, predictions, timings, plan):
    assert_renders(run.warmup_curve(first, predictions, title="t"))
    assert_renders(run.launch_timings(timings, title="t"))
    assert_renders(run.plan_placement(plan, title="t"))


@FIGURES
@given(data=st.data(), us=units, rows=labels, os_majors=st.lists(st.integers(13, 30), unique=True, max_size=4),
       min_runs=min_runs)
def test_fleet_figures(data, us, rows, os_majors, min_runs):
    totals = data.draw(keyed(us, counts))
    by_status = data.draw(keyed([(u, s) for u in us for s in FAILURE_STATUSES], counts))
    assert_renders(fleet.failures_by_status(us, totals, by_status, title="t"))
    by_stage = data.draw(keyed([(u, s) for u in us for s in fleet.STAGE_ORDER], counts))
    assert_renders(fleet.failures_by_stage(us, by_stage, title="t"))
    coverage = data.draw(keyed([(r, o, u) for r in rows for o in os_majors for u in us], counts))
    assert_renders(fleet.coverage_matrix(rows, os_majors, us, coverage, title="t", min_runs=min_runs))


@st.composite
def session_lines(draw):
    names = draw(st.lists(st.sampled_from([*COMPUTE_UNITS, "cpuAndNeuralEngine + fastPrediction"]), unique=True,
                          max_size=5))
    return [policy_figures.SessionLine(name, draw(ms), draw(ms), draw(st.booleans()), draw(st.text(max_size=20)),
                                       draw(counts)) for name in names]


def crossings_of(lines):
    """The crossings policy.queries.break_even_data would draw: the cheapest start against each faster line."""
    eligible = [line for line in lines if line.eligible]
    if not eligible:
        return []
    cheapest = min(eligible, key=lambda line: line.start_ms)
    out = []
    for other in eligible:
        if other is not cheapest and other.prediction_ms < cheapest.prediction_ms:
            n = 1 + (other.start_ms - cheapest.start_ms) / (cheapest.prediction_ms - other.prediction_ms)
            out.append(policy_figures.Crossing(cheapest.compute_units, other.compute_units, n,
                                               float(cheapest.at(n))))
    return out


@POLICY_FIGURES
@given(lines=session_lines(), predictions=st.integers(1, 10_000_000))
# A crossing past 2**63 predictions (a start 10 s slower, a prediction 1e-12 ms faster): found by Hypothesis.
@example(lines=[policy_figures.SessionLine("cpuOnly", 0.0, 1.0 + 1e-12), policy_figures.SessionLine("all", 1e7, 1.0)],
         predictions=1)
def test_policy_break_even(lines, predictions):
    assert_renders(policy_figures.break_even(lines, crossings_of(lines), predictions, "t"))


@POLICY_FIGURES
@given(rows=st.lists(st.builds(policy_figures.StageRow, st.sampled_from(COMPUTE_UNITS), st.sampled_from(LOAD_KINDS),
                               counts, maybe_ms, maybe_ms, maybe_ms, maybe_ms, maybe_ms), max_size=12))
def test_policy_cold_start(rows):
    assert_renders(policy_figures.cold_start(rows, "t"))


@st.composite
def variant_row(draw):
    low, difference, high = draw(ordered(st.floats(-1e7, 1e7), 3))
    return policy_figures.VariantRow(
        draw(st.sampled_from(COMPUTE_UNITS)), draw(st.sampled_from(LOAD_KINDS)), draw(st.text(max_size=8)),
        draw(st.text(max_size=8)), draw(ms), draw(ms), difference, low, high, draw(rate), draw(counts), draw(counts),
        draw(st.booleans()))


@POLICY_FIGURES
@given(rows=st.lists(variant_row(), max_size=10))
def test_policy_variant_differences(rows):
    assert_renders(policy_figures.variant_differences(rows, "time to first result"))


# --- pages over generated fleets ---------------------------------------------------------------------------------

PAGE_URLS = ["/", "/compare", "/versions", "/fleet", "/policy", "/policy/cold-start"]
IPHONES = [f"iPhone{g},{i}" for g, i in ((12, 1), (13, 2), (14, 4), (14, 5), (14, 2), (14, 7), (15, 2), (15, 3),
                                         (15, 4), (16, 1), (16, 2), (17, 1), (17, 3), (18, 1))]
VERSIONS = [f"3.{i}.0" for i in range(6)]
times = st.one_of(st.none(), st.sampled_from([0.0, 0.001, 1.5, 40.0, 3e5, 8.64e7]), st.floats(0.0, 1e5))
run_specs = st.fixed_dictionaries({
    "model": st.sampled_from(("face-retouch", "face-retouch", "segmenter-lite")),
    "device": st.sampled_from([*IPHONES, "iPad14,3"]),
    "version": st.sampled_from(VERSIONS),
    "os_version": st.sampled_from(("17.6.1", "18.1.1", "26.0.1")),
    "variant": st.sampled_from((None, "a", "b")),
    "units": st.sampled_from(COMPUTE_UNITS),
    "strategy": st.sampled_from(SPECIALIZATION_STRATEGIES),
    "kind": st.sampled_from(LOAD_KINDS),
    "status": st.sampled_from(("ok", "ok", "ok", *FAILURE_STATUSES)),
    "source": st.sampled_from(("lab", "field")),
    "day": st.integers(0, 20),
    "load": times, "first": times, "decrypt": times,
    "warm": st.lists(st.floats(0.0, 1e4), max_size=3),
    "memory": st.one_of(st.none(), st.floats(0.0, 1e5)),
    "plan": st.booleans(),
})
PLAN = [{"op": "conv_0", "type": "conv", "device": "neural_engine", "estimated_cost": 0.12},
        {"op": "relu_0", "type": "relu", "device": "cpu", "estimated_cost": None}]
# The filters people click (each piece as the pages' links write it), up to three combined.
QUERY_PIECES = [{"rows": "device"}, {"rows": "chip"}, {"scale": "ms"}, {"metric": "crash_rate"},
                {"metric": "load_in_memory"}, {"metric": "prediction_p90"}, {"metric": "peak_memory_mb"},
                {"metric": "first_prediction"}, {"os_min": "18"}, {"os_max": "17"}, {"compute_units": "cpuOnly"},
                {"variant": "b"}, {"source": "field"}, {"version": "3.5.0"}, {"chip": "A16 Bionic"},
                {"device": "iPhone15,2"}, {"devices": "catalogue"}, {"load_kind": "cold"},
                {"predictions_per_session": "1"}, {"predictions_per_session": "10000000"}, {"baseline": "none"},
                {"specialization_strategy": "fastPrediction"}]
queries = st.lists(st.sampled_from(QUERY_PIECES), max_size=3).map(lambda pieces: {k: v for p in pieces
                                                                                  for k, v in p.items()})


def wire_run(make_run, spec):
    ok = spec["status"] == "ok"
    timings = {"decrypt": spec["decrypt"], "compile": None,
               "load": spec["load"] if spec["load"] is not None or not ok else 1.0,
               "first_prediction": spec["first"] if spec["first"] is not None or not ok else 1.0}
    return make_run(
        model={**RUN["model"], "name": spec["model"], "version": spec["version"]},
        device={"identifier": spec["device"], "os_version": spec["os_version"]}, variant=spec["variant"],
        compute_units=spec["units"], optimization_hints={"specialization_strategy": spec["strategy"]},
        load_kind=spec["kind"], source=spec["source"], status=spec["status"],
        failure=None if ok else {"stage": "load", "message": "boom"}, timings_ms=timings,
        predictions_ms=spec["warm"], peak_memory_mb=spec["memory"], compute_plan=PLAN if spec["plan"] else None,
        started_at=f"2026-11-{1 + spec['day']:02d}T10:00:00Z")


# The issue's fleet: 12 iPhones, 6 versions, OS 17/18/26, two variants; one panel per device on /versions.
ISSUE_FLEET = [dict(model="face-retouch", device=IPHONES[i % 12], version=VERSIONS[i % 6],
                    os_version=("17.6.1", "18.1.1", "26.0.1")[i % 3], variant="ab"[i % 2],
                    units=("all", "cpuOnly")[i % 2], strategy="default", kind="cold", status="ok", source="lab",
                    day=i % 20, load=100.0 + i, first=10.0, decrypt=None, warm=[5.0 + i % 7], memory=None,
                    plan=False) for i in range(72)]


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fleet=st.lists(run_specs, min_size=1, max_size=12), query=queries)
@example(fleet=ISSUE_FLEET, query={"rows": "device", "scale": "ms"})
def test_no_fleet_shape_breaks_a_page(client, member, make_run, fleet, query):
    Project.objects.filter(slug="shapes").delete()
    bulk_load("shapes", [wire_run(make_run, spec) for spec in fleet])
    Project.objects.get(slug="shapes").members.add(member)
    client.force_login(member)
    some_run = Run.objects.filter(project__slug="shapes").values_list("run_id", flat=True).first()
    for url in [*PAGE_URLS, f"/runs/{some_run}"]:
        response = client.get(url, query)
        assert response.status_code == 200, (url, query, response.status_code)
