"""The demo fleet, exactly as ``manage.py load_demo`` loads it, answers issue 14's "done when": on the device of the
demo's specialization-strategy study (benchmarks.fleet.HINTS_STUDY) the policy picks Apple's default strategy for
short sessions and ``fastPrediction`` for long ones, and that device's break-even chart draws both."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from benchmarks.fleet import HINTS_STUDY
from collector.models import ModelVersion, Run
from policy import figures, queries
from policy.evidence import policy_table

from .conftest import committed_project

pytestmark = pytest.mark.django_db

SLUG = "demo-hints"
UNIT = HINTS_STUDY["compute_units"]
DEFAULT, FAST = UNIT, f"{UNIT} + fastPrediction"
QUERY = {"model": HINTS_STUDY["model"], "version": HINTS_STUDY["version"], "device": HINTS_STUDY["device"]}
SHORT, LONG = 3, 500


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """``manage.py load_demo`` into its own project, committed once for the module; yields (project, policy
    token)."""
    with django_db_blocker.unblock():
        had_user = get_user_model().objects.filter(username="demo").exists()
    with committed_project(django_db_blocker, SLUG,
                           lambda slug: call_command("load_demo", project=slug, stdout=io.StringIO())) as loaded:
        yield loaded
    if not had_user:
        with django_db_blocker.unblock():
            get_user_model().objects.filter(username="demo").delete()


@pytest.fixture
def app(demo, client_for):
    return client_for(demo[1])


def answer(response):
    assert response.status_code == 200, response.content
    body = response.json()
    return body["compute_units"], body["optimization_hints"]


def test_the_demo_holds_both_strategies_on_the_study_device(demo):
    runs = Run.objects.filter(project=demo[0], model_version__name=QUERY["model"],
                              model_version__version=QUERY["version"], device__identifier=QUERY["device"],
                              compute_units=UNIT)
    assert runs.filter(specialization_strategy="fastPrediction").count() >= 10
    assert runs.filter(specialization_strategy="default").count() >= 10


def test_an_app_shipping_the_neural_engine_gets_the_default_strategy_short_and_fast_prediction_long(app):
    """Same device, same units allowed (the Neural Engine, cpuOnly to end the chain): only the workload differs."""
    query = {**QUERY, "compute_units": f"{UNIT},cpuOnly"}
    short = app.get("/api/v1/policy", {**query, "predictions_per_session": SHORT})
    long = app.get("/api/v1/policy", {**query, "predictions_per_session": LONG})
    assert answer(short) == (UNIT, {}), short.json()["reason"]
    assert answer(long) == (UNIT, {"specialization_strategy": "fastPrediction"}), long.json()["reason"]
    evidence = long.json()["evidence"]
    # Each strategy judged on the device's own runs, not pooled with the other, and priced as the simulator made
    # it: fastPrediction loads slower and predicts faster.
    assert evidence[FAST]["source"] == evidence[DEFAULT]["source"] == "device"
    assert evidence[FAST]["eligible"] and evidence[DEFAULT]["eligible"]
    assert evidence[FAST]["load_ms_median"] > evidence[DEFAULT]["load_ms_median"]
    assert evidence[FAST]["prediction_ms_median"] < evidence[DEFAULT]["prediction_ms_median"]
    assert short.json()["evidence"][FAST]["expected_session_ms"] > short.json()["evidence"][DEFAULT][
        "expected_session_ms"]


def test_with_every_unit_allowed_long_sessions_still_get_fast_prediction(app):
    long = app.get("/api/v1/policy", {**QUERY, "predictions_per_session": LONG})
    assert answer(long) == (UNIT, {"specialization_strategy": "fastPrediction"}), long.json()["reason"]
    assert answer(app.get("/api/v1/policy", {**QUERY, "predictions_per_session": SHORT}))[1] == {}


def test_the_break_even_chart_of_the_study_device_draws_both_strategies_and_their_crossing(demo):
    """What the policy page draws for the device (policy.views.policy: the table, then policy.figures)."""
    version = ModelVersion.objects.get(project=demo[0], name=QUERY["model"], version=QUERY["version"])
    table = policy_table(version, LONG, devices="measured")
    entry = next(e for e in table if e.identifier == QUERY["device"])
    lines, crossings = queries.break_even_data(entry.policy)
    figure = figures.break_even(lines, crossings, LONG)
    names = {trace.name for trace in figure.data}
    assert {DEFAULT, FAST} <= names
    crossing = next(c for c in crossings if (c.cheaper, c.faster) == (DEFAULT, FAST))
    assert SHORT < crossing.predictions < LONG  # where fastPrediction pays back its slower load
