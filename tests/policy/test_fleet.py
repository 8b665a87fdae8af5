"""The policy on the simulated fleet (benchmarks/fleet.py), whose ground truth is known."""
import statistics

import pytest
from rest_framework.test import APIClient

from benchmarks.fleet import CHIP_OF, GROUND_TRUTH
from collector.models import Run
from collector.aggregates import Median
from policy.evidence import gather_evidence

pytestmark = pytest.mark.django_db

FAST_NEURAL_ENGINE = ["A17 Pro", "A18 Pro"]
CRASH = GROUND_TRUTH["crash"]  # face-retouch >= 3.2.0 crashes on A15 Bionic with all / cpuAndNeuralEngine


def identifiers(*chips):
    return [i for i, chip in CHIP_OF.items() if chip in chips]


@pytest.fixture
def app(fleet):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {fleet[2]}")  # the policy token
    return client


@pytest.mark.parametrize("device", identifiers(*FAST_NEURAL_ENGINE))
def test_fast_neural_engine_phones_get_it(app, device):
    body = app.get("/api/v1/policy", {"model": "face-retouch", "version": "3.2.0", "device": device,
                                      "predictions_per_session": 300}).json()
    assert body["compute_units"] in ("cpuAndNeuralEngine", "all"), body
    assert body["basis"] in ("device", "chip") and body["fallback"][-1] == "cpuOnly"


@pytest.mark.parametrize("load_kind", [None, "cold", "cached", "in_memory"])
@pytest.mark.parametrize("n", [1, 300, 100_000])
def test_the_crashing_units_are_never_offered_on_a15(app, n, load_kind):
    query = {"model": CRASH["model"], "version": CRASH["from_version"], "predictions_per_session": n,
             **({"load_kind": load_kind} if load_kind else {})}
    export = app.get("/api/v1/policy/export", query).json()["devices"]
    for device in identifiers(CRASH["chip"]):
        assert device in export
        offered = [export[device]["compute_units"], *export[device]["fallback"]]
        assert not set(offered) & set(CRASH["compute_units"]), (device, offered)
        single = app.get("/api/v1/policy", {**query, "device": device}).json()
        assert [single["compute_units"], *single["fallback"]] == offered


def test_export_covers_every_catalogue_device_and_ends_at_cpu_only(app):
    body = app.get("/api/v1/policy/export", {"model": "face-retouch", "version": "3.2.0"}).json()
    assert set(CHIP_OF) <= set(body["devices"])
    for entry in body["devices"].values():
        assert entry["basis"] in ("device", "chip", "default")
        chain = [entry["compute_units"], *entry["fallback"]]
        assert chain[-1] == "cpuOnly" and len(chain) == len(set(chain))


def test_diffusion_load_outweighs_a_few_steps(app):
    """style-diffusion: the Neural Engine's cold load is ~10x the GPU's; a single step does not pay it back."""
    query = {"model": "style-diffusion", "version": "1.0.0", "device": "iPhone15,2", "load_kind": "cold"}
    one = app.get("/api/v1/policy", {**query, "predictions_per_session": 1}).json()
    many = app.get("/api/v1/policy", {**query, "predictions_per_session": 200}).json()
    assert one["compute_units"] == "cpuAndGPU", one
    assert many["compute_units"] in ("cpuAndNeuralEngine", "all"), many


def test_database_medians_match_python(fleet):
    runs = Run.objects.filter(project=fleet[0], status="ok", model_version__name="segmenter-lite")
    got = {row["compute_units"]: row["m"] for row in runs.values("compute_units").annotate(m=Median("load_ms"))}
    for unit, median in got.items():
        values = list(runs.filter(compute_units=unit).values_list("load_ms", flat=True))
        assert median == pytest.approx(statistics.median(values))


def test_evidence_counts_every_run_and_failure(fleet):
    runs = Run.objects.filter(project=fleet[0], model_version__name="face-retouch", model_version__version="3.2.0")
    per_chip = gather_evidence(runs, "chip")
    total = sum(u.runs for units in per_chip.values() for u in units)
    failures = sum(u.failure_count for units in per_chip.values() for u in units)
    assert total == runs.count() and failures == runs.exclude(status="ok").count()
    a15 = {u.compute_units: u for u in per_chip[CRASH["chip"]]}
    assert a15["all"].failure_rate > 0.1 and a15["cpuAndGPU"].failure_rate < 0.05


def test_fleet_queries_are_bounded(app, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        app.get("/api/v1/policy/export", {"model": "face-retouch", "version": "3.2.0"})
    # An OS with no runs: the restricted evidence (5 queries, one of them the first pending run) finds nothing,
    # all OS versions are asked (5 more).
    with django_assert_max_num_queries(14):
        app.get("/api/v1/policy", {"model": "face-retouch", "version": "3.2.0", "device": "iPhone16,1",
                                   "os_version": "27.0"})
