"""Optimization hints on the simulated fleet (issue 14, item 1): style-diffusion's Neural Engine runs set
``fastPrediction`` on part of the runs (benchmarks.fleet.FAST_PREDICTION: a longer load for faster predictions).
On one device, the policy picks the default strategy for short sessions and fastPrediction for long ones, and the
break-even chart draws both."""
import re

import pytest
from django.contrib.auth import get_user_model

from benchmarks.fleet import CHIP_OF, FAST_PREDICTION, generate
from collector.bulk import bulk_load

from .conftest import committed_project

pytestmark = pytest.mark.django_db

SLUG = "hints-fleet"
CHIP, DEVICE = "A16 Bionic", "iPhone15,2"
# style-diffusion 1.0.0 on the A16 devices of a 30,000-run draw: ~265 runs, ~50 of them fastPrediction.
QUERY = {"model": "style-diffusion", "version": "1.0.0", "device": DEVICE,
         "compute_units": "cpuAndNeuralEngine,cpuOnly"}  # an app that ships the Neural Engine: which strategy?


@pytest.fixture(scope="module")
def hints_fleet(django_db_setup, django_db_blocker):
    with committed_project(django_db_blocker, SLUG, lambda slug: bulk_load(slug, (
            r for r in generate(30000, 7) if r["model"]["name"] == "style-diffusion"
            and r["model"]["version"] == "1.0.0" and CHIP_OF[r["device"]["identifier"]] == CHIP))) as loaded:
        yield loaded


@pytest.fixture
def app(hints_fleet, client_for):
    return client_for(hints_fleet[1])


def test_fast_prediction_wins_long_sessions_and_the_default_short_ones_on_one_device(app):
    short = app.get("/api/v1/policy", {**QUERY, "predictions_per_session": 3}).json()
    long = app.get("/api/v1/policy", {**QUERY, "predictions_per_session": 500}).json()
    assert (short["compute_units"], short["optimization_hints"]) == ("cpuAndNeuralEngine", {}), short["reason"]
    assert (long["compute_units"], long["optimization_hints"]) == (
        "cpuAndNeuralEngine", {"specialization_strategy": "fastPrediction"}), long["reason"]
    # Both configurations were priced on their own runs, and each answer's chain holds the other.
    fast = long["evidence"]["cpuAndNeuralEngine + fastPrediction"]
    default = long["evidence"]["cpuAndNeuralEngine"]
    assert fast["eligible"] and default["eligible"]
    assert fast["load_ms_median"] > default["load_ms_median"] * 1.2
    assert fast["prediction_ms_median"] < default["prediction_ms_median"] * 0.9
    assert FAST_PREDICTION[CHIP][1] < 1 < FAST_PREDICTION[CHIP][0]
    assert long["fallback_configurations"][0] == {"compute_units": "cpuAndNeuralEngine", "optimization_hints": {}}
    assert long["fallback"] == ["cpuOnly"]  # unit names: the chosen unit is not repeated
    assert short["fallback_configurations"][0]["optimization_hints"] == {"specialization_strategy": "fastPrediction"}


def test_the_break_even_chart_draws_both_strategies(hints_fleet, client):
    user = get_user_model().objects.create_user("hints-reader", password="pw")
    hints_fleet[0].members.add(user)
    client.force_login(user)
    page = client.get("/policy", {"project": SLUG, "model": "style-diffusion", "version": "1.0.0",
                                  "device": DEVICE, "predictions_per_session": 500}).content.decode()
    assert "cpuAndNeuralEngine + fastPrediction" in page  # its own line, beside the default strategy's
    # where fastPrediction pays back its longer load against the same unit with the default strategy
    assert re.search(r"cpuAndNeuralEngine \+ fastPrediction wins? from \d+", page)


def test_the_filter_bar_narrows_pages_to_one_strategy(hints_fleet, client):
    """The pages pool every configuration unless narrowed; Hints = fastPrediction keeps that configuration alone."""
    user = get_user_model().objects.create_user("hints-filter", password="pw")
    hints_fleet[0].members.add(user)
    client.force_login(user)
    query = {"project": SLUG, "model": "style-diffusion", "version": "1.0.0", "device": DEVICE,
             "predictions_per_session": 500}
    both = client.get("/policy", query).content.decode()
    fast = client.get("/policy", {**query, "specialization_strategy": "fastPrediction"}).content.decode()
    plain = client.get("/policy", {**query, "specialization_strategy": "default"}).content.decode()
    assert "cpuAndNeuralEngine + fastPrediction" in both
    assert "cpuAndNeuralEngine + fastPrediction" in fast and '<option value="fastPrediction" selected>' in fast
    assert "fastPrediction" not in plain.replace('<option value="fastPrediction" >fastPrediction</option>', "")
    overview = client.get("/", {**query, "specialization_strategy": "fastPrediction", "rows": "chip"})
    assert overview.status_code == 200
