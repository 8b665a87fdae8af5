from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from collector.models import RunnerToken


class Command(BaseCommand):
    help = "Revoke a project's token by name; requests with it get 401 from then on."

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("name")

    def handle(self, project, name, **options):
        n = RunnerToken.objects.filter(project__slug=project, name=name, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not n:
            raise CommandError(f"no active token {name!r} in project {project!r}")
        self.stdout.write(f"Revoked token {name!r} of {project}.")
