"""One project whose runs the check cannot read must not stop the check of the others (issue 11, defect 2)."""
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command

from alerts.check import check_all
from alerts.models import Alert
from collector.models import Project, Run


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_a_project_the_check_cannot_read_is_reported_and_the_next_is_checked(project, step_runs, add_runs):
    # A year-10000 time, as the API stored before it refused such times: PostgreSQL keeps it, Python cannot read it.
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}))
    Run.objects.filter(pk=Run.objects.filter(project=project).first().pk).update(
        started_at=datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-12))))
    later = Project.objects.create(slug="later", name="Later")
    add_runs(step_runs({"1.0.0": 1.0, "1.1.0": 1.0, "1.2.0": 1.25}), slug=later.slug)

    results = {r.project: r for r in check_all()}

    assert "DataError" in results["acme"].error
    assert results["later"].error is None and results["later"].created
    assert Alert.objects.filter(project=later, version="1.2.0").exists()
    assert not Alert.objects.filter(project=project).exists()
    with pytest.raises(CommandError, match="failed for acme"):
        call_command("check_regressions")
