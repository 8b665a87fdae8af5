from django.core.management.base import BaseCommand, CommandError

from alerts.check import check_all, check_project
from collector.models import Project


class Command(BaseCommand):
    help = ("Run the regression check now, as the hourly schedule does (series with new runs), or for one model "
            "(version) with --model/--version. Safe to run again: existing alerts are found, not duplicated.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version is the model version here: it replaces Django's --version option.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", help="project slug (default: every project)")
        parser.add_argument("--model", help="check every series of this model, whatever the watermark")
        parser.add_argument("--version", dest="model_version", help="with --model: report alerts at this version only")

    def handle(self, project=None, model=None, model_version=None, **options):
        version = model_version
        if version and not model:
            raise CommandError("--version needs --model")
        if project:
            try:
                results = [check_project(Project.objects.get(slug=project), model, version)]
            except Project.DoesNotExist:
                raise CommandError(f"no project {project!r}")
        else:
            results = check_all(model, version)
        for r in results:
            if r.error:
                self.stderr.write(f"{r.project}: check failed: {r.error}")
                continue
            self.stdout.write(f"{r.project}: {r.groups} model/chip groups, {r.findings} regressions, "
                              f"{len(r.created)} new alerts, {r.updated} refreshed, {r.withdrawn} withdrawn")
        failed = [r.project for r in results if r.error]
        if failed:
            raise CommandError(f"the check failed for {', '.join(failed)}; the other projects were checked")
