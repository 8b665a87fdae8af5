"""Alert summaries (issue 12): one per (project, model, version), and notes. 0004 files the stored alerts in
their summaries, 0005 makes the summary required: three transactions, as PostgreSQL refuses to index or alter a
table with pending foreign-key checks."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0002_alert_withdrawal'),
        ('collector', '0003_run_id_per_project'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='alert',
            name='triaged_separately',
            field=models.BooleanField(default=False, help_text="A person set this alert's state itself: its summary's triage leaves it alone."),
        ),
        migrations.CreateModel(
            name='AlertSummary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model', models.CharField(help_text='Model name.', max_length=200)),
                ('version', models.CharField(help_text='The model version that regressed.', max_length=64)),
                ('state', models.CharField(choices=[('new', 'new'), ('acknowledged', 'acknowledged'), ('invalid', 'invalid'), ('fixed', 'fixed')], default='new', help_text='Set by a person; applies to the alerts not triaged separately.', max_length=12)),
                ('state_changed_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alert_summaries', to='collector.project')),
                ('state_changed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'alert summaries',
            },
        ),
        migrations.CreateModel(
            name='AlertNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('state', models.CharField(blank=True, choices=[('new', 'new'), ('acknowledged', 'acknowledged'), ('invalid', 'invalid'), ('fixed', 'fixed')], help_text='The state set with this note; empty: a note alone.', max_length=12)),
                ('text', models.TextField(blank=True, max_length=4000)),
                ('alert', models.ForeignKey(blank=True, help_text='Empty: a note on the whole summary.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notes', to='alerts.alert')),
                ('author', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('summary', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notes', to='alerts.alertsummary')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.AddField(
            model_name='alert',
            name='summary',
            field=models.ForeignKey(help_text="The model version's change this alert belongs to; set on saving.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='alerts.alertsummary'),
        ),
        migrations.AddConstraint(
            model_name='alertsummary',
            constraint=models.UniqueConstraint(fields=('project', 'model', 'version'), name='alert_summary_once_per_version'),
        ),
    ]
