"""Sketch columns stored out of line without compression (PostgreSQL): a KLL sketch of doubles does not compress (the
stored sizes equal the raw ones on the 10M fleet), yet PostgreSQL tried pglz on every large sketch of every row an
upload rewrote. Re-adding 3,000 runs to their rows at 10M runs: 2.32-2.35 -> 2.00-2.06 s. Metadata only: values
already stored keep their form. SQLite has no such setting."""
from django.db import migrations

TABLES = ("collector_runsketch", "collector_runsketchtotal", "collector_runsketchconfiguration",
          "collector_runsketchversionday")
COLUMNS = ("decrypt_ms", "compile_ms", "load_ms", "first_prediction_ms", "prediction_median_ms", "prediction_p90_ms",
           "peak_memory_mb", "launch_ms")


def storage(kind):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} " + ", ".join(
                f"ALTER COLUMN {column} SET STORAGE {kind}" for column in COLUMNS))
    return apply


class Migration(migrations.Migration):

    dependencies = [("collector", "0014_sketch_rows_unconstrained")]

    operations = [migrations.RunPython(storage("EXTERNAL"), storage("EXTENDED"))]
