"""The run row's predictions_ms, copied into RunPredictions by 0010."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('collector', '0010_run_predictions'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='run',
            name='predictions_ms',
        ),
    ]
