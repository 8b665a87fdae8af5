"""Migrations 0003-0005: alerts stored before summaries existed each join their version's summary; a state a person
had set stays, and counts as triaged separately. Run on PostgreSQL too: it refuses to index or alter a table with
pending foreign-key checks in the same transaction."""
import pytest
from django.utils import timezone

from tests.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("alerts", "0002_alert_withdrawal")], [("alerts", "0005_alert_summary_required")]


def test_stored_alerts_get_their_summaries():
    old = migrate(BEFORE)
    try:
        Project = old.get_model("collector", "Project")
        Alert = old.get_model("alerts", "Alert")
        User = old.get_model("auth", "User")
        project = Project.objects.create(slug="old", name="Old")
        ana = User.objects.create(username="ana")
        common = dict(project=project, kind="slowdown", model="face-retouch", baseline_version="3.2.0",
                      chip="A16 Bionic", metric="prediction_ms_median", baseline=12.0, current=14.0, change=0.16,
                      runs_baseline=20, runs_current=20)
        early = timezone.now() - timezone.timedelta(days=3)
        made = [Alert.objects.create(version="3.3.0", compute_units="all", fingerprint="a", created_at=early,
                                     **common),
                Alert.objects.create(version="3.3.0", compute_units="cpuOnly", fingerprint="b", state="invalid",
                                     state_changed_by=ana, **common),
                Alert.objects.create(version="3.4.0", compute_units="all", fingerprint="c", **common)]
        new = migrate(AFTER)
        Alert = new.get_model("alerts", "Alert")
        AlertSummary = new.get_model("alerts", "AlertSummary")
        summaries = {(s.model, s.version): s for s in AlertSummary.objects.filter(project_id=project.id)}
        assert set(summaries) == {("face-retouch", "3.3.0"), ("face-retouch", "3.4.0")}
        assert summaries["face-retouch", "3.3.0"].created_at == early  # its first alert's
        got = {a.fingerprint: a for a in Alert.objects.filter(id__in=[a.id for a in made])}
        assert got["a"].summary_id == got["b"].summary_id == summaries["face-retouch", "3.3.0"].id
        assert got["c"].summary_id == summaries["face-retouch", "3.4.0"].id
        assert (got["b"].state, got["b"].triaged_separately, got["a"].triaged_separately) == ("invalid", True,
                                                                                             False)
    finally:
        migrate_to_latest()
