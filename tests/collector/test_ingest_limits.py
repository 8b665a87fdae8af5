"""Issue 11: what a run may hold is what the storage can hold and read back; anything else is a 400 naming the field."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from django.db.models import CharField, DateTimeField, TextField, UUIDField

from collector.models import ComputePlanEntry, Device, ModelVersion, Run
from collector.schema import RunIn

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


# --- Every string the schema takes fits its column -------------------------------------------------------------------

# Where each string field of a run is stored. A new string field must be added here, with its column.
COLUMNS = {
    "run_id": (Run, "run_id"),
    "source": (Run, "source"),
    "model.name": (ModelVersion, "name"),
    "model.version": (ModelVersion, "version"),
    "model.sha256": (ModelVersion, "sha256"),
    "model.format": (ModelVersion, "format"),
    "model.precision": (ModelVersion, "precision"),
    "device.identifier": (Device, "identifier"),
    "device.os_version": (Run, "os_version"),
    "app_build": (Run, "app_build"),
    "compute_units": (Run, "compute_units"),
    "optimization_hints.specialization_strategy": (Run, "specialization_strategy"),
    "optimization_hints.reshape_frequency": (Run, "reshape_frequency"),
    "variant": (Run, "variant"),
    "started_at": (Run, "started_at"),
    "status": (Run, "status"),
    "failure.stage": (Run, "failure_stage"),
    "failure.message": (Run, "failure_message"),
    "load_kind": (Run, "load_kind"),
    "thermal_state": (Run, "thermal_state"),
    "compute_plan[].op": (ComputePlanEntry, "op"),
    "compute_plan[].type": (ComputePlanEntry, "op_type"),
    "compute_plan[].device": (ComputePlanEntry, "device"),
}


def string_fields(schema, node=None, path=""):
    """(path, JSON schema) of every string a run may carry, following $refs, anyOf, nested objects and arrays."""
    node = schema if node is None else node
    if "$ref" in node:
        yield from string_fields(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], path)
        return
    for alternative in node.get("anyOf", ()):
        yield from string_fields(schema, alternative, path)
    if node.get("type") == "string":
        yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from string_fields(schema, sub, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from string_fields(schema, node["items"], f"{path}[]")


def test_every_schema_string_has_a_limit_within_its_column():
    fields = list(string_fields(RunIn.model_json_schema()))
    assert {path for path, _ in fields} == set(COLUMNS), "map each string field of collector/schema.py to its column"
    for path, node in fields:
        model, name = COLUMNS[path]
        column = model._meta.get_field(name)
        if isinstance(column, UUIDField):
            assert node.get("format") == "uuid", path
        elif isinstance(column, DateTimeField):
            assert node.get("format") == "date-time", path
        elif "enum" in node:
            assert max(len(v) for v in node["enum"]) <= column.max_length, path
        else:
            # TextField has no limit of its own, but the schema still bounds it; a CharField bounds the schema.
            assert "maxLength" in node, f"{path} has no maximum length"
            if isinstance(column, CharField) and not isinstance(column, TextField):
                assert node["maxLength"] <= column.max_length, (
                    f"{path} takes {node['maxLength']} characters, its column {model.__name__}.{name} "
                    f"{column.max_length}")


@pytest.mark.parametrize("field", ["format", "precision"])
def test_model_tag_longer_than_its_column_is_400_and_the_batch_stores_nothing(runner, make_run, field):
    bad = make_run()
    bad["model"] = {**bad["model"], field: "x" * 40}
    r = post(runner, {"runs": [make_run(), bad]})
    assert r.status_code == 400, r.content
    assert list(r.json()["errors"]) == ["1"] and fields_of(r, "1") == {f"model.{field}"}
    assert Run.objects.count() == 0
    ok = make_run()
    ok["model"] = {**ok["model"], field: "x" * 32}
    assert post(runner, ok).status_code == 201
