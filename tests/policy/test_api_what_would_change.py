"""GET /api/v1/policy carries ``what_would_change``: the runs that would change the answer, as data and as the
sentence the policy page's last column shows for the same device (issue 14)."""
import html

import pytest
from django.contrib.auth import get_user_model

from perfboard.conf import policy_settings

from .conftest import runs_of
from .test_api import POLICY, QUERY, gpu

FEW = 5  # runs of `all` on the device: faster at 300 predictions, but below the policy's minimum


def test_a_faster_unit_short_of_runs_says_how_many_more_it_needs(runner, add_runs, make_run):
    add_runs(runs_of(make_run, FEW) + [gpu(make_run) for _ in range(12)])
    body = runner.get(POLICY, {**QUERY, "predictions_per_session": 300}).json()
    assert body["compute_units"] == "cpuAndGPU"
    [change] = body["what_would_change"]
    assert {k: change[k] for k in ("compute_units", "configuration", "more_runs", "clean", "level", "runs",
                                   "failures")} == {
        "compute_units": "all", "configuration": "all", "more_runs": policy_settings().min_runs - FEW,
        "clean": False, "level": "device", "runs": FEW, "failures": 0}
    gpu_ms, all_ms = body["evidence"]["cpuAndGPU"]["expected_session_ms"], body["evidence"]["all"][
        "expected_session_ms"]
    assert change["speedup"] == pytest.approx(gpu_ms / all_ms, abs=0.01) and change["speedup"] > 1
    assert change["text"].startswith(f"{policy_settings().min_runs - FEW} more runs of all on iPhone 14 Pro")


def test_a_failing_unit_says_how_many_clean_runs_would_bring_it_back(runner, add_runs, make_run):
    add_runs(runs_of(make_run, 20, failures=1) + [gpu(make_run) for _ in range(12)])
    body = runner.get(POLICY, {**QUERY, "predictions_per_session": 300}).json()
    [change] = body["what_would_change"]
    assert (change["compute_units"], change["clean"], change["runs"], change["failures"]) == ("all", True, 20, 1)
    # one failure in 20 + more_runs runs is at most the gate, and one fewer run would not be
    gate = policy_settings().max_failure_rate
    assert 1 / (20 + change["more_runs"]) <= gate < 1 / (20 + change["more_runs"] - 1)


def test_nothing_to_change_is_an_empty_list(runner, add_runs, make_run):
    add_runs(runs_of(make_run, 12) + [gpu(make_run) for _ in range(12)])
    assert runner.get(POLICY, {**QUERY, "predictions_per_session": 300}).json()["what_would_change"] == []


def test_the_api_says_what_the_policy_page_says(runner, add_runs, make_run, project, client):
    add_runs(runs_of(make_run, FEW) + runs_of(make_run, 20, failures=1, compute_units="cpuAndNeuralEngine")
             + [gpu(make_run) for _ in range(12)])
    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    client.force_login(user)
    query = {**QUERY, "predictions_per_session": 300}
    texts = [c["text"] for c in runner.get(POLICY, query).json()["what_would_change"]]
    assert len(texts) == 2
    page = html.unescape(client.get("/policy", {**query, "project": project.slug}).content.decode())
    for text in texts:
        assert text in page
