"""Every alert belongs to a summary (0004 gave the stored ones theirs)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0004_summarise_stored_alerts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='summary',
            field=models.ForeignKey(help_text="The model version's change this alert belongs to; set on saving.", on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='alerts.alertsummary'),
        ),
    ]
