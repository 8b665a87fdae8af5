"""Dashboard pages. Filters travel in the query string (dashboard/filters.py), so every view is a shareable link.

The policy pages (/policy, /policy/cold-start) are the policy app's (policy/urls.py, namespace "policy").
"""
from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("compare", views.compare, name="compare"),
    path("versions", views.versions, name="versions"),
    path("fleet", views.fleet, name="fleet"),
    path("runs/<uuid:run_id>", views.run_detail, name="run"),
]
