"""A dashboard page with the task broker down (a closed port, not a mock): it answers from the older rollup and says
so, and the rollup is not marked current, so the next view (broker back) queues its recomputation."""
from django.urls import reverse

from collector.bulk import bulk_load
from collector.models import ModelVersion, Run
from dashboard import rollups
from dashboard.models import RollupState
from tests.broker import broker  # noqa: F401

PAGE = {"project": "demo", "model": "face-retouch", "version": "3.2.0"}


def test_stale_rollup_with_the_broker_down_then_back(member_client, settings, make_run, broker):  # noqa: F811
    mv = ModelVersion.objects.get(project__slug="demo", name="face-retouch", version="3.2.0")
    first = rollups.current(mv)  # computed on the spot: there is none yet
    settings.PERFBOARD = {**settings.PERFBOARD, "DASHBOARD_ROLLUP_MAX_AGE": 0}
    bulk_load("demo", [make_run(model={"name": "face-retouch", "version": "3.2.0"})])
    newest = Run.objects.order_by("-id").values_list("id", flat=True)[0]

    broker.down()
    response = member_client.get(reverse("dashboard:overview"), PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "recomputing them could not be queued (the task broker is unreachable)" in html
    state = RollupState.objects.get(pk=mv.pk)
    assert (state.max_run_id, state.runs) == (first.max_run_id, first.runs)  # not marked current
    assert mv in rollups.stale_versions()  # so beat's refresh_stale_rollups still recomputes it

    broker.up()
    response = member_client.get(reverse("dashboard:overview"), PAGE)
    assert response.status_code == 200 and "could not be queued" not in response.content.decode()
    (message,) = broker.take("dashboard.refresh_rollup")
    assert message["args"] == [mv.pk]
    assert RollupState.objects.get(pk=mv.pk).max_run_id == newest  # queued: other views do not queue it again
