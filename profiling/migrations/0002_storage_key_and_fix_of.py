"""Job folders keyed by a UUID (issue 16, item 7), and fix jobs (item 4). Existing jobs get one each; their files stay where they are
(artifact rows keep their paths), and deleting such a job removes the folders its artifacts live in."""
import uuid

import django.db.models.deletion
from django.db import migrations, models


def give_keys(apps, schema_editor):
    ProfilingJob = apps.get_model("profiling", "ProfilingJob")
    for job in ProfilingJob.objects.filter(storage_key__isnull=True).only("pk"):
        ProfilingJob.objects.filter(pk=job.pk).update(storage_key=uuid.uuid4())


class Migration(migrations.Migration):

    dependencies = [("profiling", "0001_initial")]

    operations = [
        migrations.AddField("profilingjob", "storage_key", models.UUIDField(null=True, editable=False)),
        migrations.RunPython(give_keys, migrations.RunPython.noop),
        migrations.AlterField(
            "profilingjob", "storage_key",
            models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                             help_text="Names the job's folder under MEDIA_ROOT/profiling/jobs/."),
        ),
        migrations.AddField(
            "profilingjob", "fix_of",
            models.ForeignKey(null=True, blank=True, on_delete=django.db.models.deletion.SET_NULL,
                              related_name="fixes", to="profiling.profilingjob",
                              help_text="The job whose dynamic_weight findings this job fixes (issue 16, item 4)."),
        ),
    ]
