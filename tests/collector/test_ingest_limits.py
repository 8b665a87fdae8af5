"""Issue 11: what a run may hold is what the storage can hold and read back; anything else is a 400 naming the field."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from collector.models import Run

URL = "/api/v1/runs"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def fields_of(response, index="0"):
    return {e["field"] for e in response.json()["errors"][index]}


@pytest.mark.parametrize("started_at", [
    "9999-12-31T23:00:00-12:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "2016-12-31T23:59:59Z",       # before Core ML
    "2026-11-20T10:00:00+14:01",  # offset past +14:00
    "2026-11-20T10:00:00-14:30",
    "2026-11-20T10:00:00+18:00",  # PostgreSQL refuses it
])
def test_started_at_outside_what_a_run_can_have_is_400(runner, make_run, started_at):
    r = post(runner, make_run(started_at=started_at))
    assert r.status_code == 400, r.content
    assert fields_of(r) == {"started_at"}
    assert Run.objects.count() == 0


def test_started_at_more_than_a_day_ahead_is_400_and_within_a_day_is_stored(runner, make_run):
    now = datetime.now(timezone.utc)
    late = (now + timedelta(days=1, minutes=5)).isoformat()
    r = post(runner, make_run(started_at=late))
    assert r.status_code == 400 and fields_of(r) == {"started_at"}
    soon = (now + timedelta(hours=23)).astimezone(timezone(timedelta(hours=-12))).isoformat()
    assert post(runner, make_run(started_at=soon)).status_code == 201
    edges = ["2017-01-01T00:00:00Z", "2017-01-01T14:00:00+14:00", "2026-11-20T10:00:00-14:00"]
    for started_at in edges:
        assert post(runner, make_run(started_at=started_at)).status_code == 201, started_at


def test_a_batch_with_one_out_of_range_run_stores_nothing_and_reads_still_work(runner, make_run):
    runs = [make_run(), make_run(started_at="9999-12-31T23:00:00-12:00"), make_run()]
    r = post(runner, {"runs": runs})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["1"]
    assert fields_of(r, "1") == {"started_at"}
    assert Run.objects.count() == 0
    assert runner.get(URL).status_code == 200
