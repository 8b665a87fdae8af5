"""GET /api/v1/policy and /api/v1/policy/export on hand-made runs: shape, errors, who may read what."""
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from collector.models import Project, RunnerToken
from perfboard.conf import policy_settings

from .conftest import runs_of

POLICY = "/api/v1/policy"
EXPORT = "/api/v1/policy/export"
QUERY = {"model": "face-retouch", "version": "3.2.0", "device": "iPhone15,2"}


def gpu(make_run, **fields):
    """A GPU run: cheap load, slower predictions than the RUN template's `all` (1430 ms load, 12 ms predictions)."""
    return make_run(compute_units="cpuAndGPU", timings_ms={"decrypt": None, "compile": 300.0, "load": 200.0,
                                                           "first_prediction": 60.0},
                    predictions_ms=[40.0, 41.0, 39.0], **fields)


@pytest.fixture
def measured(add_runs, make_run):
    """iPhone15,2: 12 clean runs of `all` and of `cpuAndGPU`; iPhone15,3 (same chip) none."""
    add_runs(runs_of(make_run, 12) + [gpu(make_run) for _ in range(12)])


def test_policy_answers_the_spec_shape(runner, measured):
    r = runner.get(POLICY, {**QUERY, "predictions_per_session": 300})
    assert r.status_code == 200, r.content
    body = r.json()
    assert {"compute_units", "fallback", "basis", "reason", "evidence"} <= body.keys()
    assert (body["compute_units"], body["fallback"], body["basis"]) == ("all", ["cpuAndGPU", "cpuOnly"], "device")
    line = body["evidence"]["all"]
    assert {"runs", "crash_rate", "crash_rate_upper", "load_ms_median", "first_prediction_ms_median",
            "prediction_ms_median", "expected_session_ms"} <= line.keys()
    assert line["runs"] == 12 and line["crash_rate"] == 0.0 and 0.2 < line["crash_rate_upper"] < 0.3
    assert line["load_ms_median"] == 1430.2 and line["prediction_ms_median"] == 12.1
    assert line["expected_session_ms"] == pytest.approx(1430.2 + 95.1 + 299 * 12.1, abs=0.1)
    assert body["predictions_per_session"] == 300 and body["device"]["chip"] == "A16 Bionic"


def test_workload_size_flips_the_choice(runner, measured):
    # all: 1525 ms to the first result then 12.1 ms; GPU: 260 ms then 40 ms -> break-even near 46 predictions.
    assert runner.get(POLICY, {**QUERY, "predictions_per_session": 1}).json()["compute_units"] == "cpuAndGPU"
    assert runner.get(POLICY, {**QUERY, "predictions_per_session": 45}).json()["compute_units"] == "cpuAndGPU"
    assert runner.get(POLICY, {**QUERY, "predictions_per_session": 47}).json()["compute_units"] == "all"


def test_a_device_without_runs_backs_off_to_its_chip(runner, measured):
    body = runner.get(POLICY, {**QUERY, "device": "iPhone15,3", "predictions_per_session": 300}).json()
    assert (body["compute_units"], body["basis"]) == ("all", "chip")


def test_unknown_device_gets_the_default(runner, measured):
    r = runner.get(POLICY, {**QUERY, "device": "iPhone99,9"})
    assert r.status_code == 200
    body = r.json()
    assert (body["compute_units"], body["fallback"], body["basis"]) == ("cpuAndGPU", ["cpuOnly"], "default")
    assert body["device"] == {"identifier": "iPhone99,9", "name": "", "chip": "", "known": False}


def test_crashes_on_the_device_keep_a_unit_out(runner, add_runs, make_run):
    add_runs(runs_of(make_run, 40, failures=1) + [gpu(make_run) for _ in range(12)])  # 2.5% crashes on `all`
    body = runner.get(POLICY, {**QUERY, "predictions_per_session": 10_000}).json()
    assert (body["compute_units"], body["fallback"]) == ("cpuAndGPU", ["cpuOnly"])
    assert body["evidence"]["all"]["crash_rate"] == 0.025 and not body["evidence"]["all"]["eligible"]


def test_load_kind_prices_every_unit_with_that_load(runner, add_runs, make_run):
    cached = [make_run(load_kind="cached", timings_ms={"decrypt": None, "compile": None, "load": 100.0,
                                                       "first_prediction": 95.1}) for _ in range(12)]
    add_runs(runs_of(make_run, 12) + cached)
    cold = runner.get(POLICY, {**QUERY, "load_kind": "cold"}).json()["evidence"]["all"]
    warm = runner.get(POLICY, {**QUERY, "load_kind": "cached"}).json()["evidence"]["all"]
    assert (cold["load_ms_median"], warm["load_ms_median"]) == (1430.2, 100.0)


def test_os_version_restricts_evidence_when_it_can(runner, measured):
    body = runner.get(POLICY, {**QUERY, "os_version": "18.1.1"}).json()
    assert body["os_scope"] == "18" and body["basis"] == "device"
    other = runner.get(POLICY, {**QUERY, "os_version": "26.1"}).json()
    assert other["os_scope"] == "all" and other["basis"] == "device"


def test_compute_units_limits_the_candidates(runner, measured):
    body = runner.get(POLICY, {**QUERY, "predictions_per_session": 300, "compute_units": "cpuAndGPU,cpuOnly"}).json()
    assert (body["compute_units"], body["fallback"]) == ("cpuAndGPU", ["cpuOnly"])
    assert "all" not in body["evidence"]


@pytest.mark.parametrize("params, name", [
    ({"predictions_per_session": "many"}, "predictions_per_session"),
    ({"predictions_per_session": "2.5"}, "predictions_per_session"),
    ({"predictions_per_session": "0"}, "predictions_per_session"),
    ({"compute_units": "gpu"}, "compute_units"),
    ({"compute_units": "all,ane"}, "compute_units"),
    ({"load_kind": "warm"}, "load_kind"),
    ({"os_version": "eighteen"}, "os_version"),
    ({"model": ""}, "model"),
])
def test_bad_parameter_is_400_naming_it(runner, measured, params, name):
    r = runner.get(POLICY, {**QUERY, **params})
    assert r.status_code == 400 and name in r.json(), r.content


@pytest.mark.parametrize("missing", ["model", "version", "device"])
def test_missing_parameter_is_400_naming_it(runner, measured, missing):
    r = runner.get(POLICY, {k: v for k, v in QUERY.items() if k != missing})
    assert r.status_code == 400 and missing in r.json()


def test_export_bad_parameters_are_400(runner, measured):
    assert "version" in runner.get(EXPORT, {"model": "face-retouch"}).json()
    assert "devices" in runner.get(EXPORT, {"model": "face-retouch", "version": "3.2.0", "devices": "x"}).json()


def test_unknown_model_or_version_is_404(runner, measured):
    r = runner.get(POLICY, {**QUERY, "model": "nope"})
    assert r.status_code == 404 and "unknown model 'nope'" in r.json()["detail"]
    r = runner.get(EXPORT, {"model": "face-retouch", "version": "9.9.9"})
    assert r.status_code == 404 and "known versions: 3.2.0" in r.json()["detail"]


def test_policy_token_reads_policies_but_not_runs(client_for, policy_token, measured):
    app = client_for(policy_token)
    assert app.get(POLICY, QUERY).status_code == 200
    assert app.get(EXPORT, {"model": "face-retouch", "version": "3.2.0"}).status_code == 200
    assert app.get("/api/v1/runs").status_code == 403


def test_no_token_is_401(client_for, measured):
    assert client_for().get(POLICY, QUERY).status_code == 401
    assert client_for("pb_not-a-token").get(EXPORT, {"model": "face-retouch", "version": "3.2.0"}).status_code == 401


def test_another_projects_tokens_see_nothing(client_for, measured):
    other = Project.objects.create(slug="other", name="Other")
    for kind in (RunnerToken.RUNNER, RunnerToken.POLICY):
        client = client_for(RunnerToken.issue(other, f"t-{kind}", kind)[1])
        assert client.get(POLICY, QUERY).status_code == 404
        assert client.get(EXPORT, {"model": "face-retouch", "version": "3.2.0"}).status_code == 404


def test_members_read_their_projects_only(client, project, measured):
    user = get_user_model().objects.create_user("ana", password="pw")
    client.force_login(user)
    assert client.get(POLICY, QUERY).status_code == 404
    project.members.add(user)
    assert client.get(POLICY, QUERY).status_code == 200


def test_same_model_in_two_projects_needs_project(client, project, add_runs, make_run, measured):
    from collector.bulk import bulk_load

    bulk_load("second", [make_run()])
    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    Project.objects.get(slug="second").members.add(user)
    client.force_login(user)
    assert "project" in client.get(POLICY, QUERY).json()
    assert client.get(POLICY, {**QUERY, "project": "acme"}).json()["basis"] == "device"


def test_export_has_an_entry_per_catalogue_device(runner, measured):
    body = runner.get(EXPORT, {"model": "face-retouch", "version": "3.2.0", "predictions_per_session": 300}).json()
    assert body["default"]["compute_units"] == "cpuAndGPU" and body["default"]["fallback"] == ["cpuOnly"]
    devices = body["devices"]
    assert devices["iPhone15,2"]["basis"] == "device" and devices["iPhone15,2"]["compute_units"] == "all"
    assert devices["iPhone15,4"]["basis"] == "chip"  # same chip, no runs of its own
    assert devices["iPhone16,1"]["basis"] == "default"
    assert all(entry["fallback"][-1] == "cpuOnly" or entry["compute_units"] == "cpuOnly"
               for entry in devices.values())
    measured_only = runner.get(EXPORT, {"model": "face-retouch", "version": "3.2.0", "devices": "measured"}).json()
    assert list(measured_only["devices"]) == ["iPhone15,2"]


def test_policy_and_export_use_a_bounded_number_of_queries(runner, measured, django_assert_max_num_queries):
    # 10, and the first pending run (collector.sketches._first_pending) for each of the evidence's questions
    with django_assert_max_num_queries(12):
        runner.get(POLICY, QUERY)
    with django_assert_max_num_queries(12):
        runner.get(EXPORT, {"model": "face-retouch", "version": "3.2.0"})


def test_defaults_come_from_settings(runner, measured):
    with override_settings(PERFBOARD={**settings.PERFBOARD, "POLICY_PREDICTIONS_PER_SESSION": 7,
                                      "POLICY_DEFAULT_COMPUTE_UNITS": "cpuOnly", "MIN_RUNS": 13}):
        body = runner.get(POLICY, QUERY).json()
        assert body["predictions_per_session"] == 7
        assert (body["compute_units"], body["basis"]) == ("cpuOnly", "default")  # 12 runs < 13
    with override_settings(PERFBOARD={**settings.PERFBOARD, "POLICY_DEFAULT_COMPUTE_UNITS": "gpu"}):
        with pytest.raises(ImproperlyConfigured):
            policy_settings()
