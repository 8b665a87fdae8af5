"""Two checks of one project at once (two workers, or beat and the dashboard button) make each alert once."""
import threading

import pytest
from django.db import connection

from alerts.check import check_project
from alerts.models import Alert


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_checks_make_each_alert_once(project, step_runs, add_runs):
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.0}, n=30, crash_rates={"1.2.0": 0.3},
                       device="iPhone14,5", seed=4))
    barrier, results, errors = threading.Barrier(2), [], []

    def check():
        try:
            barrier.wait()
            results.append(check_project(project))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(len(r.created) for r in results) == [0, 4]  # one check made them, the other found them
    assert Alert.objects.filter(project=project).count() == 4
