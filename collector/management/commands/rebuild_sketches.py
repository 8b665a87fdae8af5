"""Recompute the sketch rows (collector.sketches) from the stored runs: the backfill, or a repair."""
from django.core.management.base import BaseCommand, CommandError

from collector.models import Project
from collector.sketches import rebuild


class Command(BaseCommand):
    help = "Recompute the runs' sketch rows (all projects, or --project SLUG), one model version at a time."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="only this project's runs")

    def handle(self, *args, project=None, **options):
        chosen = None
        if project:
            chosen = Project.objects.filter(slug=project).first()
            if chosen is None:
                raise CommandError(f"no project {project!r}")
        n = rebuild(chosen, stdout=self.stdout)
        self.stdout.write(f"{n} sketch rows written")
