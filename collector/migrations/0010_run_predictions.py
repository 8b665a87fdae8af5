"""Runs' warm predictions move off the run row into RunPredictions (docs/scaling.md, "The runs table"): one
INSERT ... SELECT on SQLite and PostgreSQL alike (runs without predictions get no row); 0011 drops the column, in a
transaction of its own (PostgreSQL refuses to alter collector_run while this one's foreign-key checks are pending).
Reversed, the column is filled back from the side table."""
from django.db import migrations, models
import django.db.models.deletion

FORWARD = ("INSERT INTO collector_runpredictions (run_id, predictions_ms) "
           "SELECT id, predictions_ms FROM collector_run WHERE predictions_ms <> '[]'")
# Runs without a side-table row keep the column's default, [].
BACKWARD = ("UPDATE collector_run SET predictions_ms = (SELECT p.predictions_ms FROM collector_runpredictions p "
            "WHERE p.run_id = collector_run.id) "
            "WHERE id IN (SELECT run_id FROM collector_runpredictions)")


class Migration(migrations.Migration):

    dependencies = [
        ('collector', '0009_sketch_configurations'),
    ]

    operations = [
        migrations.CreateModel(
            name='RunPredictions',
            fields=[
                ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                             related_name='prediction_series', serialize=False,
                                             to='collector.run')),
                ('predictions_ms', models.JSONField()),
            ],
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
