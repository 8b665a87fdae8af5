"""Runs carry optimization_hints (docs/api.md; issue 14, item 1): accepted, stored, shown, and never pooled."""
import json

import pytest

from collector.evidence import gather_by
from collector.models import Run

URL = "/api/v1/runs"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_hints_are_stored_and_absent_means_apples_defaults(runner, make_run):
    hinted = make_run(optimization_hints={"specialization_strategy": "fastPrediction",
                                          "reshape_frequency": "infrequent"})
    plain = make_run()
    only_one = make_run(optimization_hints={"specialization_strategy": "fastPrediction"})
    r = post(runner, {"runs": [hinted, plain, only_one]})
    assert r.status_code == 201, r.content
    stored = {str(r.run_id): (r.specialization_strategy, r.reshape_frequency) for r in Run.objects.all()}
    assert stored == {hinted["run_id"]: ("fastPrediction", "infrequent"),
                      plain["run_id"]: ("default", "frequent"),
                      only_one["run_id"]: ("fastPrediction", "frequent")}
    shown = runner.get(f"{URL}/{hinted['run_id']}").json()
    assert shown["optimization_hints"] == {"specialization_strategy": "fastPrediction",
                                           "reshape_frequency": "infrequent"}


@pytest.mark.parametrize("hints, field", [
    ({"specialization_strategy": "fast"}, "optimization_hints.specialization_strategy"),
    ({"reshape_frequency": "sometimes"}, "optimization_hints.reshape_frequency"),
    ({"compute_units": "all"}, "optimization_hints.compute_units"),
])
def test_an_unknown_hint_or_value_is_a_400_naming_it(runner, make_run, hints, field):
    r = post(runner, {"runs": [make_run(optimization_hints=hints)]})
    assert r.status_code == 400
    assert {e["field"] for e in r.json()["errors"]["0"]} == {field}
    assert Run.objects.count() == 0


def test_evidence_keeps_configurations_apart(runner, make_run):
    def run(strategy, warm):
        return make_run(optimization_hints={"specialization_strategy": strategy},
                        predictions_ms=[warm] * 3, compute_units="cpuAndNeuralEngine")
    assert post(runner, {"runs": [run("default", 12.0), run("default", 12.0), run("fastPrediction", 8.0)]}
                ).status_code == 201
    by = gather_by(Run.objects.all(), ("compute_units", "specialization_strategy"), ["prediction"])
    assert {k: (e.runs, e.median("prediction")) for k, e in by.items()} == {
        ("cpuAndNeuralEngine", "default"): (2, 12.0), ("cpuAndNeuralEngine", "fastPrediction"): (1, 8.0)}
