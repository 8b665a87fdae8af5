"""Every stored alert joins its version's summary (made for it). Alerts a person had already triaged keep their
state and are marked as triaged separately, so a later triage of the summary leaves them alone."""
from django.db import migrations


def summarise_alerts(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    AlertSummary = apps.get_model("alerts", "AlertSummary")
    Alert.objects.exclude(state="new").filter(state_changed_by__isnull=False).update(triaged_separately=True)
    keys = Alert.objects.filter(summary__isnull=True).values("project_id", "model", "version").distinct()
    for key in keys:
        alerts = Alert.objects.filter(**key)
        first = alerts.order_by("created_at").values_list("created_at", flat=True)[0]
        summary, _ = AlertSummary.objects.get_or_create(**key, defaults={"created_at": first})
        alerts.update(summary=summary)


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0003_alert_summaries'),
    ]

    operations = [
        migrations.RunPython(summarise_alerts, migrations.RunPython.noop),
    ]
