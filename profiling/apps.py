from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    name = "profiling"
    verbose_name = "Profiling jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from .models import ProfilingJob

        def remove_files(sender, instance, **kwargs):
            from .jobs import delete_job_files

            delete_job_files(instance)  # a deleted job leaves no artifacts on disk

        post_delete.connect(remove_files, sender=ProfilingJob, dispatch_uid="profiling-job-files")
