"""The configuration rows' three sketches every default view and the policy read (load, first prediction, warm
prediction) kept in the row (PostgreSQL ``STORAGE MAIN``) instead of out of line (0015's ``EXTERNAL``): reading a
value out of line is one more lookup in the TOAST table's index, and at 1M runs a version's 709 configuration rows hold
2,127 such sketches of ~1.25 KB each (fetched: 17.1 -> 8.1 ms, p50 of 15). The row then holds ~4 KB; the other
sketches stay out of line, and a count of these rows reads more pages (a version's rows: 1.8 -> 2.1 ms). lz4 where
the server has it, for the compression PostgreSQL tries on a row beyond 2 KB before it keeps a MAIN value in the row
(a sketch of doubles does not compress, and pglz spent its time finding that out: 0015). The rows already stored are
rewritten, so they move into the row too (the configuration rows are bounded by the keys: 12,486 at 1M or 10M
fleet runs). SQLite has no such setting."""
from django.db import migrations

TABLE = "collector_runsketchconfiguration"
HOT = ("load_ms", "first_prediction_ms", "prediction_median_ms")


def storage(kind, rewrite):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            lz4 = cursor.fetchone()[0] and kind == "MAIN"
        compression = "lz4" if lz4 else "DEFAULT"
        schema_editor.execute(f"ALTER TABLE {TABLE} " + ", ".join(
            f"ALTER COLUMN {column} SET STORAGE {kind}, ALTER COLUMN {column} SET COMPRESSION {compression}"
            for column in HOT))
        if rewrite:  # a new value of each sketch (the same bytes), stored as the column now says
            schema_editor.execute(f"UPDATE {TABLE} SET " + ", ".join(f"{column} = {column} || ''::bytea"
                                                                      for column in HOT))
    return apply


class Migration(migrations.Migration):

    dependencies = [("collector", "0022_sketch_failure_stages")]

    operations = [migrations.RunPython(storage("MAIN", rewrite=True), storage("EXTERNAL", rewrite=True))]
