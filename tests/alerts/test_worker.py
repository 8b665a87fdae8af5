"""The scheduled check on a real Celery worker (Redis in CI; skipped without CELERY_BROKER_URL)."""
import pytest
from django.conf import settings

from alerts.models import Alert, CheckState

pytestmark = pytest.mark.celery_worker


def test_beat_schedules_the_check_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["check-regressions"]
    assert entry["task"] == "alerts.check_regressions" and entry["schedule"] == 3600


def test_scheduled_check_runs_on_a_worker_and_is_safe_to_run_again(celery_worker, project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    task = celery_worker.tasks[settings.CELERY_BEAT_SCHEDULE["check-regressions"]["task"]]
    (first,) = [r for r in task.delay().get(timeout=120) if r["project"] == project.slug]  # what beat sends
    assert first["created"] == 3
    assert set(Alert.objects.filter(project=project).values_list("version", "metric")) == {
        ("1.2.0", "prediction_ms_median"), ("1.2.0", "prediction_ms_p90"), ("1.2.0", "first_prediction_ms")}
    assert CheckState.objects.get(project=project).last_finished_at is not None
    # Run again, e.g. a task redelivered after its worker died (acks late): nothing new.
    (again,) = task.delay(project.slug).get(timeout=120)
    assert again["created"] == 0 and Alert.objects.filter(project=project).count() == 3


def test_check_of_one_model_version_on_a_worker(celery_worker, project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.3, "1.2.0": 1.3 * 1.3}))
    task = celery_worker.tasks["alerts.check_regressions"]
    (result,) = task.delay(project.slug, "face-retouch", "1.1.0").get(timeout=120)
    assert result["created"] == 3
    assert set(Alert.objects.filter(project=project).values_list("version", flat=True)) == {"1.1.0"}
