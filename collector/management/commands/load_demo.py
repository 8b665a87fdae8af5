from django.core.management import call_command
from django.core.management.base import BaseCommand

from benchmarks.fleet import demo_fleet
from collector.bulk import bulk_load
from collector.models import Project, Run


class Command(BaseCommand):
    help = ("Load the demo fleet (benchmarks/fleet.py: demo_fleet, the draw and HINTS_STUDY) into project 'demo', "
            "with a login demo/demo, unless loaded.")

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=6000, help="runs of the draw (HINTS_STUDY's come on top)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--project", default="demo")

    def handle(self, runs, seed, project, **options):
        from django.contrib.auth import get_user_model

        proj, _ = Project.objects.get_or_create(slug=project, defaults={"name": "Demo fleet"})
        User = get_user_model()
        user = User.objects.filter(username="demo").first()
        if user is None:
            user = User.objects.create_superuser("demo", "demo@example.com", "demo")
            self.stdout.write("Created user demo (password demo).")
        proj.members.add(user)
        if Run.objects.filter(project=proj).exists():
            self.stdout.write(f"Project {project} already has runs; nothing loaded.")
            return
        n = bulk_load(project, demo_fleet(runs, seed))
        self.stdout.write(f"Loaded {n} demo runs into project {project}.")
        # Run the regression check once, as the hourly schedule would, so the alerts page shows the fleet's facts.
        call_command("check_regressions", project=project, stdout=self.stdout)
