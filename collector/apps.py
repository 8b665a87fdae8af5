from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CollectorConfig(AppConfig):
    name = "collector"
    verbose_name = "Benchmark runs"

    def ready(self):
        from .aggregates import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="perfboard_sqlite_percentile")
