"""The overview's star is the policy's answer (issue 14): with hinted runs, the unit it marks on a device row is the
unit of the configuration GET /api/v1/policy gives for that device, filtered by OS or not.

The fleet is built so that pooling the strategies would answer otherwise: on the Neural Engine, the default strategy
loses to the GPU at the default workload and fastPrediction beats it, but the two pooled (medians between theirs)
lose to the GPU."""
import json
import re

import numpy as np
import pytest

DEVICE = "iPhone15,2"
MODEL = {"name": "face-retouch", "version": "3.2.0", "format": "mlprogram", "precision": "fp16",
         "size_bytes": 1000}
# (compute units, hints, load ms, first prediction ms, warm prediction ms): at the default workload (100 predictions,
# PERFBOARD POLICY_PREDICTIONS_PER_SESSION, which the overview and the API price) a session costs
# GPU ~1,110 ms, Neural Engine default ~1,607, fastPrediction ~1,061, the two Neural Engine strategies pooled ~1,330.
CONFIGURATIONS = [("cpuAndGPU", None, 100.0, 20.0, 10.0),
                  ("cpuAndNeuralEngine", None, 800.0, 15.0, 8.0),
                  ("cpuAndNeuralEngine", {"specialization_strategy": "fastPrediction"}, 1000.0, 12.0, 0.5)]


@pytest.fixture
def hinted_fleet(project, make_run, member):
    from collector.bulk import bulk_load

    rng = np.random.default_rng(3)
    runs = []
    for units, hints, load, first, warm in CONFIGURATIONS:
        for _ in range(20):
            noise = lambda x: round(x * float(np.exp(rng.normal(0, 0.03))), 3)  # noqa: E731
            run = make_run(model=MODEL, device={"identifier": DEVICE, "os_version": "18.1.1"}, compute_units=units,
                           variant=None, load_kind="cold",
                           timings_ms={"load": noise(load), "first_prediction": noise(first)},
                           predictions_ms=[noise(warm) for _ in range(10)])
            run.pop("compute_plan")
            if hints:
                run["optimization_hints"] = hints
            runs.append(run)
    bulk_load(project.slug, runs)
    return project


@pytest.fixture
def member(project, django_user_model):
    user = django_user_model.objects.create_user("ana", password="pw")
    project.members.add(user)
    return user


def starred_units(html: str) -> set[str]:
    """The units whose overview cell carries the policy's star (the heatmap's figure JSON in the page)."""
    figure = json.loads(re.search(r'perfboardPlot\("overview-heatmap", (\{.*?\}), \{', html, re.S).group(1))
    return {unit for trace in figure["data"] for row in trace.get("text") or []
            for unit, text in zip(trace["x"], row) if str(text).startswith("★")}


@pytest.mark.parametrize("extra", [{}, {"os_min": "17"}], ids=["every run", "os filter"])
def test_the_overview_stars_the_unit_of_the_policy_answer(hinted_fleet, member, client, client_for, policy_token,
                                                         extra):
    client.force_login(member)
    page = client.get("/", {"project": hinted_fleet.slug, "model": MODEL["name"], "version": MODEL["version"],
                            "rows": "device", **extra})
    assert page.status_code == 200
    answer = client_for(policy_token).get("/api/v1/policy", {"model": MODEL["name"], "version": MODEL["version"],
                                                              "device": DEVICE}).json()
    # the fleet does what it was built for: the policy picks the hinted configuration
    assert (answer["compute_units"], answer["optimization_hints"]) == (
        "cpuAndNeuralEngine", {"specialization_strategy": "fastPrediction"}), answer["reason"]
    assert answer["basis"] == "device"
    assert starred_units(page.content.decode()) == {answer["compute_units"]}
