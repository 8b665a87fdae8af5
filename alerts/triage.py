"""Triage: a person sets the state of one alert or of a summary (which applies it to the summary's alerts that
nobody triaged separately), optionally with a note; the note records who, when and the state set with it."""
from django.db import transaction
from django.utils import timezone

from .models import Alert, AlertNote, AlertSummary


def set_state(alert: Alert, state: str, user, note: str = "") -> None:
    """Record a triage decision on one alert, who made it and when. From now on the summary's triage leaves the
    alert alone."""
    with transaction.atomic():
        alert.state = state
        alert.state_changed_by = user
        alert.state_changed_at = timezone.now()
        alert.triaged_separately = True
        alert.save(update_fields=["state", "state_changed_by", "state_changed_at", "triaged_separately"])
        AlertNote.objects.create(summary_id=alert.summary_id, alert=alert, author=user,
                                 created_at=alert.state_changed_at, state=state, text=note)


def set_summary_state(summary: AlertSummary, state: str, user, note: str = "") -> int:
    """Record a triage decision on a summary and apply it to its alerts not triaged separately. Returns the number
    of alerts it set."""
    now = timezone.now()
    with transaction.atomic():
        summary.state, summary.state_changed_by, summary.state_changed_at = state, user, now
        summary.save(update_fields=["state", "state_changed_by", "state_changed_at"])
        changed = summary.alerts.filter(triaged_separately=False).update(state=state, state_changed_by=user,
                                                                         state_changed_at=now)
        AlertNote.objects.create(summary=summary, author=user, created_at=now, state=state, text=note)
    return changed


def add_note(summary: AlertSummary, user, text: str, alert: Alert | None = None) -> AlertNote:
    """A note alone, without a change of state."""
    return AlertNote.objects.create(summary=summary, alert=alert, author=user, text=text)
