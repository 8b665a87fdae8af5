"""URLconf for profiling view tests: the project's URLs plus profiling at /profiling/ (as it will be included)."""
from django.urls import include, path

from perfboard.urls import urlpatterns as project_patterns

urlpatterns = [p for p in project_patterns if "profiling" not in str(p.pattern)] + [
    path("profiling/", include("profiling.urls")),
]
