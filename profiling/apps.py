from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    name = "profiling"
    verbose_name = "Profiling jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, pre_delete

        from .models import ProfilingJob

        def note_folders(sender, instance, **kwargs):
            from .jobs import job_folders

            instance._folders = job_folders(instance)  # before the cascade deletes its artifacts' rows

        def remove_files(sender, instance, **kwargs):
            from .jobs import delete_job_files

            delete_job_files(instance, getattr(instance, "_folders", None))  # no artifacts left on disk

        pre_delete.connect(note_folders, sender=ProfilingJob, dispatch_uid="profiling-job-folders")
        post_delete.connect(remove_files, sender=ProfilingJob, dispatch_uid="profiling-job-files")
