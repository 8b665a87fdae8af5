from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from collector.models import Project, RunnerToken


class Command(BaseCommand):
    help = "Create a token for a project (creating the project if needed); prints the token once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("name", help="a name for the token, unique in the project (e.g. the runner's host)")
        parser.add_argument("--policy", action="store_true", help="read-only token for policies, to ship in apps")

    def handle(self, project, name, policy, **options):
        kind = RunnerToken.POLICY if policy else RunnerToken.RUNNER
        try:
            with transaction.atomic():
                proj, created = Project.objects.get_or_create(slug=project, defaults={"name": project})
                _, token = RunnerToken.issue(proj, name, kind)
        except IntegrityError:
            raise CommandError(f"project {project!r} already has a token named {name!r}")
        if created:
            self.stdout.write(f"Created project {project}.")
        self.stdout.write(f"Created {kind} token {name!r} for {project}. It is shown once; store it now:")
        self.stdout.write(token)
