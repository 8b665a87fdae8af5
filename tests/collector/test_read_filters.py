"""Issue 11: every odd value of a GET /api/v1/runs parameter is a 400 naming it (or an empty page), never a 500."""
import json

import pytest
from django.db import transaction

URL = "/api/v1/runs"
PARAMS = ["project", "model", "version", "device", "chip", "os_version", "compute_units", "status", "source",
          "load_kind", "variant", "started_after", "started_before", "page", "page_size"]
ODD = ["a\x00b", "9" * 40, "-1", "0", "2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-15:00",
       "9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00", "x" * 5000, "%ff", "2026-13-45", "1e400", "nan",
       "2026-11-20 10:00", "\u00e9\U0001F600"]


@pytest.mark.parametrize("started_after", ["2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-14:30",
                                           "9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00"])
def test_time_filter_with_an_offset_a_run_cannot_have_is_400_naming_it(runner, started_after):
    for name in ("started_after", "started_before"):
        r = runner.get(URL, {name: started_after})
        assert r.status_code == 400, (name, r.content)
        assert list(r.json()) == [name]
        assert "offset" in r.json()[name][0] or "UTC" in r.json()[name][0]


def test_time_filter_within_the_rule_works(runner, make_run):
    runner.post(URL, data=json.dumps(make_run()), content_type="application/json")  # started 2026-11-20T10:00Z
    assert runner.get(URL, {"started_after": "2026-11-20T23:59:00+14:00"}).json()["count"] == 1
    assert runner.get(URL, {"started_after": "2026-11-20T00:01:00-14:00"}).json()["count"] == 0
    # A bound may be far out: "everything before next year", "everything since 2000".
    assert runner.get(URL, {"started_before": "2027-06-01T00:00:00-14:00",
                            "started_after": "2000-01-01T00:00:00Z"}).json()["count"] == 1


def test_no_parameter_value_is_a_server_error(runner, make_run):
    runner.post(URL, data=json.dumps(make_run()), content_type="application/json")
    failures = []
    for name in PARAMS:
        for value in ODD:
            try:
                with transaction.atomic():  # a failed query must not poison the next one
                    code = runner.get(URL, {name: value}).status_code
            except Exception as exc:  # the test client re-raises a view's exception
                code = type(exc).__name__
            if code not in (200, 400, 404):
                failures.append((name, value[:40], code))
    assert not failures
