"""Included at /profiling/ by perfboard/urls.py."""
from django.urls import path

from . import views

app_name = "profiling"

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("jobs/<int:job_id>", views.job_detail, name="job"),
    path("jobs/<int:job_id>/fix", views.fix_job, name="fix"),
    path("jobs/<int:job_id>.json", views.job_json, name="job-json"),
    path("artifacts/<int:artifact_id>/lint.json", views.artifact_lint, name="lint"),
    path("diff", views.diff, name="diff"),
]
