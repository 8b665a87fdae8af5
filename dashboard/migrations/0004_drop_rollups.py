# The pages answer from the sketch rows (collector.sketches), fresh in the upload's own transaction, so the
# per-version rollups they once read are a stale copy of the same numbers (issue 13, item 1).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0003_rollup_source'),
    ]

    operations = [
        migrations.DeleteModel(name='CellRollup'),
        migrations.DeleteModel(name='RollupState'),
    ]
