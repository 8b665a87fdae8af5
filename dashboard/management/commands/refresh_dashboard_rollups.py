from django.core.management.base import BaseCommand

from collector.models import ModelVersion
from dashboard import rollups


class Command(BaseCommand):
    help = ("Recompute the dashboard's per-version rollups (dashboard/rollups.py) ahead of page views, e.g. after a "
            "bulk load. Pages recompute a stale rollup themselves; this only takes that wait off the first viewer.")

    def add_arguments(self, parser):
        parser.add_argument("--project", help="only this project's model versions")
        parser.add_argument("--stale-only", action="store_true", help="skip versions whose rollup is current")

    def handle(self, project=None, stale_only=False, **options):
        versions = ModelVersion.objects.select_related("project").order_by("project__slug", "name", "version")
        if project:
            versions = versions.filter(project__slug=project)
        for mv in versions:
            state = rollups.current(mv) if stale_only else rollups.refresh(mv)
            self.stdout.write(f"{mv.project.slug} {mv}: {state.runs} runs, computed {state.computed_at:%H:%M:%S}")
