"""Bulk loading of runs (demo data, the fleet simulator, benchmarks): the upload path, in large chunks.

Going through store_runs keeps one way of storing a run (same validation, summary and body hash, so a later upload
of the same run is a duplicate, and the runs' sketch rows updated as an upload's are: collector.sketches); on
PostgreSQL that path already inserts with COPY.
"""
import itertools

from .ingest import store_runs
from .models import Project
from .schema import RunIn

CHUNK = 5000


def bulk_load(project_slug: str, runs, chunk: int = CHUNK) -> int:
    """Validate and store runs (dicts of the wire format); returns how many were given."""
    project, _ = Project.objects.get_or_create(slug=project_slug, defaults={"name": project_slug})
    total = 0
    runs = iter(runs)
    while batch := list(itertools.islice(runs, chunk)):
        store_runs(project, [RunIn.model_validate(r) for r in batch])
        total += len(batch)
    return total
