"""Moving the test database between migrations, for the tests of data migrations."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """Migrate to ``targets``; returns the apps registry of that state (the models as they were there)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def latest_schema_after():
    """The tests after a migration test expect every migration applied (it leaves the database at its target)."""
    yield
    migrate_to_latest()
