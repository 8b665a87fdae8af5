from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from .aggregates import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="perfboard_sqlite_percentile")
